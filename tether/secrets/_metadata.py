"""The ``sops`` block of a document: recipients, the wrapped data key, the MAC, the rules.

sops writes the block as the last key of every document (with its keys sorted), reads it from
the first one, and keeps keys it does not use for a key type (``pgp``, ``kms``, …) as they are.
Tether does the same; it only ever writes ``age`` entries itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tether.errors import SecretsError
from tether.secrets._tree import Branch, Pair, Timestamp, from_plain, to_plain

SOPS_KEY = "sops"
FORMAT_VERSION = "3.13.3"
"""The sops release whose file format this piece writes (and was tested against)."""

DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"
OTHER_KEY_TYPES = ("pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms")


@dataclass(frozen=True)
class EncryptionRules:
    """Which values get encrypted: at most one of the six selectors, as in ``.sops.yaml``.

    With none set, values under a key ending in ``_unencrypted`` stay in clear (sops' default).
    Suffixes and regular expressions are checked against every key on a value's path; a match of
    ``unencrypted_*`` keeps the whole subtree in clear, and with ``encrypted_*`` only matching
    subtrees are encrypted. ``mac_only_encrypted`` leaves values kept in clear out of the MAC.
    """

    unencrypted_suffix: str = ""
    encrypted_suffix: str = ""
    unencrypted_regex: str = ""
    encrypted_regex: str = ""
    unencrypted_comment_regex: str = ""
    encrypted_comment_regex: str = ""
    mac_only_encrypted: bool = False

    def selectors(self) -> dict[str, str]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "mac_only_encrypted" and getattr(self, f.name)
        }

    def checked(self, where: str) -> EncryptionRules:
        """These rules, validated, with sops' default suffix when no selector is set."""
        selectors = self.selectors()
        if len(selectors) > 1:
            raise SecretsError(
                f"{where}: use only one of encrypted_suffix, unencrypted_suffix, encrypted_regex, "
                f"unencrypted_regex, encrypted_comment_regex, unencrypted_comment_regex "
                f"(found {', '.join(sorted(selectors))})"
            )
        for name, value in selectors.items():
            if name.endswith("_regex"):
                try:
                    re.compile(value)
                except re.error as error:
                    raise SecretsError(f"{where}: {name} is not a valid regex: {error}") from None
        if not selectors:
            return replace(self, unencrypted_suffix=DEFAULT_UNENCRYPTED_SUFFIX)
        return self


@dataclass
class AgeKey:
    recipient: str
    enc: str


@dataclass
class Metadata:
    age: list[AgeKey]
    rules: EncryptionRules
    lastmodified: str = ""
    mac: str = ""
    version: str = FORMAT_VERSION
    other: dict[str, Any] = field(default_factory=dict)
    """Entries Tether keeps but does not use (other key types, shamir_threshold, …)."""

    def other_key_types(self) -> list[str]:
        return [name for name in OTHER_KEY_TYPES if self.other.get(name)]

    def to_branch(self) -> Branch:
        values: dict[str, Any] = {key: from_plain(value) for key, value in self.other.items()}
        if self.age:
            values["age"] = [
                Branch([Pair("enc", key.enc), Pair("recipient", key.recipient)]) for key in self.age
            ]
        values["lastmodified"] = self.lastmodified
        values["mac"] = self.mac
        values["version"] = self.version
        for name, value in self.rules.selectors().items():
            values[name] = value
        if self.rules.mac_only_encrypted:
            values["mac_only_encrypted"] = True
        return Branch([Pair(key, values[key]) for key in sorted(values)])


_SELECTORS = [f.name for f in fields(EncryptionRules) if f.name != "mac_only_encrypted"]
_KNOWN = {
    "age",
    "lastmodified",
    "mac",
    "version",
    "mac_only_encrypted",
    "key_groups",
    *(f.name for f in fields(EncryptionRules)),
}


def split_metadata(documents: list[Branch], source: str) -> Metadata:
    """Remove the ``sops`` block from every document; return the first document's."""
    if not documents or not documents[0].has(SOPS_KEY):
        raise SecretsError(
            f"{source} is not encrypted with SOPS: it has no top-level 'sops' key "
            "(encrypt it with `tether secrets encrypt`)"
        )
    block = documents[0].get(SOPS_KEY)
    for document in documents:
        document.remove(SOPS_KEY)
    if not isinstance(block, Branch):
        raise SecretsError(f"{source}: its 'sops' entry is not a mapping")
    return _parse(block, source)


def _text(value: Any, name: str, source: str) -> str:
    if isinstance(value, Timestamp):
        return value.text
    if value is None:
        return ""
    if isinstance(value, bool | int | float | str):
        return value if isinstance(value, str) else str(value)
    raise SecretsError(f"{source}: sops.{name} is not a string")


def _parse(block: Branch, source: str) -> Metadata:
    groups = block.get("key_groups")
    age_entries = block.get("age") or []
    other = {
        pair.key: to_plain(pair.value)
        for pair in block.pairs()
        if pair.key not in _KNOWN and pair.value not in (None, "", [], 0)
    }
    if groups:
        if not isinstance(groups, list) or len(groups) != 1:
            raise SecretsError(
                f"{source} splits its data key over {len(groups) if isinstance(groups, list) else '?'} "
                "key groups (Shamir secret sharing), which Tether does not support"
            )
        [group] = groups
        if not isinstance(group, Branch):
            raise SecretsError(f"{source}: sops.key_groups[0] is not a mapping")
        age_entries = group.get("age") or []
        for pair in group.pairs():
            if pair.key != "age" and pair.value:
                other[pair.key] = to_plain(pair.value)
    if not isinstance(age_entries, list):
        raise SecretsError(f"{source}: sops.age is not a list")
    age = []
    for index, entry in enumerate(age_entries):
        if not isinstance(entry, Branch):
            raise SecretsError(f"{source}: sops.age[{index}] is not a mapping")
        age.append(
            AgeKey(
                _text(entry.get("recipient"), f"age[{index}].recipient", source).strip(),
                _text(entry.get("enc"), f"age[{index}].enc", source),
            )
        )
    mac_only = block.get("mac_only_encrypted")
    if isinstance(mac_only, str):
        mac_only = mac_only.lower() in ("true", "1", "t")
    rules = EncryptionRules(
        **{name: _text(block.get(name), name, source) for name in _SELECTORS},
        mac_only_encrypted=bool(mac_only),
    )
    return Metadata(
        age=age,
        rules=rules.checked(f"{source}: sops"),
        lastmodified=_text(block.get("lastmodified"), "lastmodified", source),
        mac=_text(block.get("mac"), "mac", source),
        version=_text(block.get("version"), "version", source),
        other=other,
    )


def newer_version(current: str) -> str:
    """The version to record when re-writing a file: ours, unless the file's is newer."""

    def parts(text: str) -> tuple[int, ...] | None:
        match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", text.strip())
        return tuple(int(p) for p in match.groups()) if match else None

    ours, theirs = parts(FORMAT_VERSION), parts(current)
    if theirs is not None and ours is not None and theirs > ours:
        return current
    return FORMAT_VERSION
