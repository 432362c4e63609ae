"""``.sops.yaml`` creation rules: which recipients and rules a new file is encrypted with.

The configuration is the first ``.sops.yaml`` found in the file's directory or a parent of it
(sops searches from the working directory instead; see ``docs/secrets.md``). Its
``creation_rules`` are tried in order and the first whose ``path_regex`` matches wins; a rule
without ``path_regex`` matches every file. The regex is searched (not anchored) in the file's
path relative to the configuration's directory, as sops does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.errors import SecretsError
from tether.secrets import _age
from tether.secrets._metadata import EncryptionRules
from tether.secrets._tree import to_plain
from tether.secrets._yaml import load_yaml

CONFIG_NAME = ".sops.yaml"
_MAX_DEPTH = 100
_UNSUPPORTED_KEYS = (
    "pgp",
    "kms",
    "gcp_kms",
    "azure_keyvault",
    "hc_vault_transit_uri",
    "hckms",
    "hc_vault",
)
_RULE_FIELDS = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)


@dataclass(frozen=True)
class CreationRule:
    """The creation rule chosen for a file: its recipients and encryption rules."""

    config: Path
    index: int
    path_regex: str
    recipients: tuple[str, ...]
    rules: EncryptionRules

    def __str__(self) -> str:
        regex = f"path_regex {self.path_regex!r}" if self.path_regex else "no path_regex"
        return f"{self.config} creation_rules[{self.index}] ({regex})"


def find_config(start: Path) -> Path | None:
    """The nearest ``.sops.yaml`` in ``start``'s directory (or ``start`` itself, when it is a
    directory) or one of its parents; None when there is none."""
    directory = start.absolute()
    if not directory.is_dir():
        directory = directory.parent
    for _ in range(_MAX_DEPTH):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
        if directory.parent == directory:
            break
        directory = directory.parent
    return None


def find_creation_rule(path: Path, config: Path | None = None) -> CreationRule:
    """The first creation rule of ``config`` (default: the nearest ``.sops.yaml``) matching
    ``path``. Raises ``SecretsError`` when there is no configuration or no rule matches."""
    if config is None:
        config = find_config(path)
        if config is None:
            raise SecretsError(
                f"no {CONFIG_NAME} found in {path.absolute().parent} or its parents to say who "
                f"may decrypt {path}: pass recipients (--age age1…) or add a {CONFIG_NAME} with "
                "creation_rules"
            )
    rules = _load_rules(config)
    relative = _relative(path, config)
    for index, rule in enumerate(rules):
        regex = rule.get("path_regex") or ""
        if not isinstance(regex, str):
            raise SecretsError(f"{config}: creation_rules[{index}].path_regex is not a string")
        try:
            matched = not regex or re.search(regex, relative) is not None
        except re.error as error:
            raise SecretsError(
                f"{config}: creation_rules[{index}].path_regex is not a valid regex: {error}"
            ) from None
        if matched:
            return _rule(rule, config, index, regex)
    regexes = ", ".join(repr(rule.get("path_regex")) for rule in rules)
    raise SecretsError(
        f"no creation rule in {config} matches {relative!r} (path_regex tried in order: "
        f"{regexes}); add a rule for it or pass recipients with --age"
    )


def _relative(path: Path, config: Path) -> str:
    absolute = path.absolute()
    try:
        return absolute.relative_to(config.absolute().parent).as_posix()
    except ValueError:
        return absolute.as_posix()


def _load_rules(config: Path) -> list[dict[str, Any]]:
    try:
        text = config.read_text()
    except OSError as error:
        raise SecretsError(f"cannot read {config}: {error.strerror}") from None
    documents = load_yaml(text, str(config)) if text.strip() else []
    data = to_plain(documents[0]) if documents else {}
    rules = data.get("creation_rules")
    if not rules:
        raise SecretsError(f"{config} has no creation_rules")
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        raise SecretsError(f"{config}: creation_rules must be a list of mappings")
    return rules


def _keys_field(value: Any, where: str) -> list[str]:
    """A key list written as a comma-separated string or a YAML list of strings."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise SecretsError(f"{where} must be a string or a list of strings")


def _group_recipients(group: Any, where: str) -> list[str]:
    if not isinstance(group, dict):
        raise SecretsError(f"{where} must be a mapping")
    unsupported = [key for key in _UNSUPPORTED_KEYS if group.get(key)]
    if unsupported:
        raise SecretsError(
            f"{where} uses {', '.join(unsupported)} keys, which Tether cannot encrypt for "
            "(age only); use sops for this file or make the rule age-only"
        )
    recipients: list[str] = []
    for index, merged in enumerate(group.get("merge") or []):
        recipients += _group_recipients(merged, f"{where}.merge[{index}]")
    recipients += _keys_field(group.get("age"), f"{where}.age")
    return recipients


def _rule(rule: dict[str, Any], config: Path, index: int, regex: str) -> CreationRule:
    where = f"{config}: creation_rules[{index}]"
    groups = rule.get("key_groups")
    if groups:
        if not isinstance(groups, list) or len(groups) != 1:
            raise SecretsError(
                f"{where} has several key_groups (Shamir secret sharing), which Tether does not "
                "support"
            )
        recipients = _group_recipients(groups[0], f"{where}.key_groups[0]")
    else:
        recipients = _group_recipients(rule, where)
    if not recipients:
        raise SecretsError(f"{where} lists no age recipients")
    values: dict[str, Any] = {}
    for name in _RULE_FIELDS:
        value = rule.get(name)
        if value not in (None, ""):
            if not isinstance(value, str):
                raise SecretsError(f"{where}.{name} must be a string")
            values[name] = value
    mac_only = rule.get("mac_only_encrypted", False)
    if not isinstance(mac_only, bool):
        raise SecretsError(f"{where}.mac_only_encrypted must be true or false")
    rules = EncryptionRules(**values, mac_only_encrypted=mac_only).checked(where)
    return CreationRule(
        config=config,
        index=index,
        path_regex=regex,
        recipients=tuple(_age.parse_recipients(recipients, where)),
        rules=rules,
    )
