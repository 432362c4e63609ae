"""Whole-document operations: encrypt, decrypt (MAC checked), edit, rotate, update keys."""

from __future__ import annotations

import copy
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tether.errors import SecretsError
from tether.secrets import _age, _go
from tether.secrets._age import Identities
from tether.secrets._cipher import KEY_SIZE, Cipher, ValueFailure
from tether.secrets._json import dump_json, dump_json_value, load_json
from tether.secrets._metadata import (
    OTHER_KEY_TYPES,
    SOPS_KEY,
    EncryptionRules,
    Metadata,
    newer_version,
    split_metadata,
)
from tether.secrets._tree import Branch, Comment, Pair, from_plain, to_plain
from tether.secrets._walk import decrypt_tree, encrypt_tree
from tether.secrets._yaml import container_paths, dump_yaml, dump_yaml_value, load_yaml

Format = Literal["yaml", "json"]
FORMATS: tuple[Format, ...] = ("yaml", "json")


def format_for_path(path: str | Path) -> Format:
    """``json`` for ``*.json``, ``yaml`` for ``*.yaml`` / ``*.yml``; an error otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise SecretsError(
        f"cannot tell the format of {path} from its name: Tether encrypts YAML (.yaml, .yml) "
        "and JSON (.json) files; pass the format explicitly (--input-type yaml|json)"
    )


def _check_format(fmt: str) -> Format:
    if fmt not in FORMATS:
        raise SecretsError(f"unknown format {fmt!r}: use yaml or json")
    return fmt


def load(text: str, fmt: str, source: str) -> list[Branch]:
    if _check_format(fmt) == "json":
        return load_json(text, source)
    documents = load_yaml(text, source)
    if not documents:
        raise SecretsError(f"{source} holds no YAML document")
    return documents


def dump(documents: list[Branch], fmt: str) -> str:
    return dump_json(documents) if _check_format(fmt) == "json" else dump_yaml(documents)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_metadata(documents: list[Branch], metadata: Metadata) -> list[Branch]:
    block = metadata.to_branch()
    return [
        Branch([*document.entries, Pair(SOPS_KEY, copy.deepcopy(block))]) for document in documents
    ]


def _refuse_metadata_key(documents: list[Branch], source: str) -> None:
    for document in documents:
        if document.has(SOPS_KEY):
            raise SecretsError(
                f"{source} is already encrypted (it has a top-level 'sops' key); decrypt or edit "
                "it instead"
            )


def _seal(
    documents: list[Branch], fmt: str, metadata: Metadata, cipher: Cipher, source: str
) -> list[Branch]:
    """``documents`` encrypted, with a fresh MAC stamped on ``metadata``.

    YAML is first put in the shape it will be read back in (written and read once), so that
    each comment is encrypted for the collection a reader will find it in.
    """
    if fmt == "yaml":
        documents = load_yaml(dump_yaml(documents), source)
    mac = encrypt_tree(documents, metadata.rules, cipher, source)
    metadata.lastmodified = _now()
    metadata.mac = Cipher(cipher.key).encrypt(mac, metadata.lastmodified)
    return documents


def encrypt_documents(
    documents: list[Branch],
    fmt: str,
    recipients: Sequence[str],
    rules: EncryptionRules | None,
    source: str,
) -> list[Branch]:
    """``documents`` encrypted under a new data key for ``recipients``, metadata added."""
    _refuse_metadata_key(documents, source)
    checked = (rules or EncryptionRules()).checked(source)
    recipients = _age.parse_recipients(recipients, source)
    if not recipients:
        raise SecretsError(f"cannot encrypt {source}: no age recipients given")
    data_key = secrets.token_bytes(KEY_SIZE)
    metadata = Metadata(age=_age.wrap(data_key, recipients, source), rules=checked)
    documents = _seal(documents, fmt, metadata, Cipher(data_key), source)
    return _with_metadata(documents, metadata)


@dataclass
class Opened:
    """A decrypted document, with what is needed to write it back encrypted."""

    documents: list[Branch] = field(repr=False)
    metadata: Metadata
    data_key: bytes = field(repr=False)
    cipher: Cipher = field(repr=False)
    encrypted: list[Branch] = field(repr=False)
    """The documents as they were read, still encrypted (metadata removed)."""


def open_documents(documents: list[Branch], identities: Identities, source: str) -> Opened:
    """Decrypt ``documents`` (as parsed, ``sops`` block included) and check their MAC."""
    metadata = split_metadata(documents, source)
    encrypted = copy.deepcopy(documents)
    data_key = _age.unwrap(metadata.age, identities, source, metadata.other_key_types())
    cipher = Cipher(data_key)
    computed = decrypt_tree(
        documents, metadata.rules, cipher, source, lambda: container_paths(documents)
    )
    _check_mac(metadata, computed, data_key, source)
    return Opened(documents, metadata, data_key, cipher, encrypted)


def _check_mac(metadata: Metadata, computed: str, data_key: bytes, source: str) -> None:
    if not metadata.mac:
        raise SecretsError(
            f"{source} has no MAC (sops.mac is empty): the file was modified after encryption "
            "or is not a complete SOPS file"
        )
    try:
        aad = _go.rfc3339_seconds(metadata.lastmodified)
    except ValueError:
        raise SecretsError(
            f"{source}: sops.lastmodified is not an RFC 3339 time, so the MAC cannot be checked"
        ) from None
    try:
        stored = Cipher(data_key).decrypt(metadata.mac, aad)
    except ValueFailure:
        raise SecretsError(
            f"MAC check failed for {source}: the stored MAC does not decrypt (sops.mac or "
            "sops.lastmodified was changed): the file was modified after encryption or the MAC "
            "is corrupt"
        ) from None
    if not isinstance(stored, str) or not hmac.compare_digest(stored.encode(), computed.encode()):
        raise SecretsError(
            f"MAC mismatch for {source}: the file was modified after encryption or the MAC is "
            "corrupt (values, their order or their types differ from what was encrypted)"
        )


def encrypt_document(
    text: str,
    fmt: str,
    recipients: Sequence[str],
    rules: EncryptionRules | None = None,
    *,
    source: str = "<document>",
) -> str:
    documents = load(text, fmt, source)
    encrypted = encrypt_documents(documents, fmt, recipients, rules, source)
    return dump(encrypted, fmt)


def decrypt_document(
    text: str, fmt: str, identities: Identities, *, source: str = "<document>"
) -> str:
    opened = open_documents(load(text, fmt, source), identities, source)
    return dump(opened.documents, fmt)


def decrypt_data(
    documents: Sequence[dict[str, Any]], identities: Identities, source: str
) -> list[dict[str, Any]]:
    branches = [from_plain(document) for document in documents]
    if not all(isinstance(branch, Branch) for branch in branches):
        raise SecretsError(f"{source}: every document must be a mapping")
    opened = open_documents(branches, identities, source)
    return [to_plain(document) for document in opened.documents]


def is_encrypted(data: Any) -> bool:
    """Whether a parsed document carries SOPS metadata (a ``sops`` mapping with a MAC)."""
    if not isinstance(data, dict):
        return False
    block = data.get(SOPS_KEY)
    return isinstance(block, dict) and "mac" in block and "lastmodified" in block


def recipients_of(text: str, fmt: str, *, source: str = "<document>") -> list[str]:
    """The age recipients an encrypted document's data key is wrapped for."""
    metadata = split_metadata(load(text, fmt, source), source)
    return [key.recipient for key in metadata.age]


class EditSession:
    """An encrypted document opened for editing: ``plaintext`` to change, then ``encrypt``.

    The data key is kept and every value that did not change keeps its ciphertext, so the
    diff of the encrypted file shows only what was edited (what ``sops edit`` does too).
    """

    def __init__(
        self,
        fmt: str,
        source: str,
        metadata: Metadata,
        opened: Opened | None = None,
        recipients: Sequence[str] = (),
    ) -> None:
        self.fmt = _check_format(fmt)
        self.source = source
        self._metadata = metadata
        self._cipher = opened.cipher if opened else None
        self._recipients = list(recipients)
        self.plaintext = dump(opened.documents, fmt) if opened else ""

    @classmethod
    def open(cls, text: str, fmt: str, identities: Identities, *, source: str) -> EditSession:
        opened = open_documents(load(text, fmt, source), identities, source)
        return cls(fmt, source, opened.metadata, opened=opened)

    @classmethod
    def new(
        cls, fmt: str, recipients: Sequence[str], rules: EncryptionRules | None, *, source: str
    ) -> EditSession:
        """A session for a file that does not exist yet (its plaintext starts empty)."""
        parsed = _age.parse_recipients(recipients, source)
        if not parsed:
            raise SecretsError(f"cannot create {source}: no age recipients given")
        metadata = Metadata(age=[], rules=(rules or EncryptionRules()).checked(source))
        return cls(fmt, source, metadata, recipients=parsed)

    def encrypt(self, plaintext: str) -> str:
        """The encrypted document for ``plaintext`` (same data key, unchanged values kept)."""
        documents = load(plaintext, self.fmt, self.source)
        _refuse_metadata_key(documents, self.source)
        metadata = copy.deepcopy(self._metadata)
        if self._cipher is None:
            data_key = secrets.token_bytes(KEY_SIZE)
            metadata.age = _age.wrap(data_key, self._recipients, self.source)
            cipher = Cipher(data_key)
        else:
            cipher = Cipher(self._cipher.key, stash=dict(self._cipher.stash))
        metadata.version = newer_version(metadata.version)
        documents = _seal(documents, self.fmt, metadata, cipher, self.source)
        return dump(_with_metadata(documents, metadata), self.fmt)


def rotate_document(
    text: str,
    fmt: str,
    identities: Identities,
    *,
    add_recipients: Iterable[str] = (),
    remove_recipients: Iterable[str] = (),
    source: str = "<document>",
) -> str:
    """Re-encrypt every value with a new data key, wrapped for the file's age recipients
    (plus ``add_recipients``, minus ``remove_recipients``)."""
    opened = open_documents(load(text, fmt, source), identities, source)
    metadata = opened.metadata
    if metadata.other_key_types():
        raise SecretsError(
            f"cannot rotate {source}: its data key is also wrapped for "
            f"{', '.join(metadata.other_key_types())} keys, which Tether cannot re-wrap; rotate "
            "it with sops"
        )
    removed = set(_age.parse_recipients(remove_recipients, source))
    recipients = [key.recipient for key in metadata.age if key.recipient not in removed]
    recipients += [r for r in _age.parse_recipients(add_recipients, source) if r not in removed]
    if not recipients:
        raise SecretsError(f"cannot rotate {source}: no age recipient would be left")
    data_key = secrets.token_bytes(KEY_SIZE)
    metadata.age = _age.wrap(data_key, recipients, source)
    metadata.version = newer_version(metadata.version)
    documents = _seal(opened.documents, fmt, metadata, Cipher(data_key), source)
    return dump(_with_metadata(documents, metadata), fmt)


@dataclass(frozen=True)
class KeyChanges:
    """What ``update_keys`` changes: the recipients added and removed."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    dropped_key_types: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.dropped_key_types)


def key_changes(text: str, fmt: str, recipients: Sequence[str], *, source: str) -> KeyChanges:
    """How the recipients of an encrypted document differ from ``recipients``."""
    metadata = split_metadata(load(text, fmt, source), source)
    wanted = _age.parse_recipients(recipients, source)
    current = [key.recipient for key in metadata.age]
    return KeyChanges(
        tuple(r for r in wanted if r not in current),
        tuple(r for r in current if r not in wanted),
        tuple(metadata.other_key_types()),
    )


def update_keys(
    text: str,
    fmt: str,
    identities: Identities,
    recipients: Sequence[str],
    *,
    source: str = "<document>",
) -> str:
    """Wrap the same data key for exactly ``recipients``; values and MAC stay as they are.

    The document is decrypted first (MAC checked), so a tampered file is not re-keyed.
    """
    opened = open_documents(load(text, fmt, source), identities, source)
    wanted = _age.parse_recipients(recipients, source)
    if not wanted:
        raise SecretsError(f"cannot update the keys of {source}: no age recipients given")
    metadata = opened.metadata
    metadata.age = _age.wrap(opened.data_key, wanted, source)
    metadata.other = {k: v for k, v in metadata.other.items() if k not in OTHER_KEY_TYPES}
    return dump(_with_metadata(opened.encrypted, metadata), fmt)


def extract(text: str, fmt: str, path: str, *, source: str) -> str:
    """The value at a sops ``--extract`` path (``["data"]["password"]``) of a decrypted text:
    a string as it is, anything else written in the document's format."""
    documents = load(text, fmt, source)
    value: Any = documents[0]
    for component in _parse_extract_path(path):
        if isinstance(component, str):
            if not isinstance(value, Branch) or not value.has(component):
                raise SecretsError(f"{source}: {path}: there is no key {component!r}")
            value = value.get(component)
        else:
            items = (
                [item for item in value if not isinstance(item, Comment)]
                if isinstance(value, list)
                else []
            )
            if not 0 <= component < len(items):
                raise SecretsError(f"{source}: {path}: there is no item [{component}]")
            value = items[component]
    if isinstance(value, str):
        return value
    if isinstance(value, Branch):
        return dump([value], fmt)
    return dump_json_value(value) if fmt == "json" else dump_yaml_value(value)


def _parse_extract_path(path: str) -> list[str | int]:
    """sops' path syntax: ``["key"]`` or ``['key']`` for keys, ``[0]`` for list items."""
    if not path.startswith("["):
        raise SecretsError(f'invalid --extract path {path!r}: expected ["key"] or [index]')
    components: list[str | int] = []
    for raw in path.split("[")[1:]:
        if not raw.endswith("]"):
            raise SecretsError(f'invalid --extract path {path!r}: expected ["key"] or [index]')
        part = raw[:-1]
        if len(part) >= 2 and part[0] in "'\"" and part[-1] == part[0]:
            components.append(part[1:-1])
            continue
        try:
            components.append(int(part))
        except ValueError:
            raise SecretsError(
                f"invalid --extract path {path!r}: {part!r} is neither a quoted key nor an index"
            ) from None
    return components
