"""Secrets: SOPS-compatible encryption of YAML and JSON documents with age, in Python.

    encrypt_document(text, fmt, recipients, rules)  -> text     values encrypted, MAC added
    decrypt_document(text, fmt, identities)         -> text     MAC checked first
    decrypt_tree(data, identities)                  -> dict     an already parsed document
    decrypt_trees([data, …], identities)            -> [dict]   the documents of one file
    is_encrypted(data)                              -> bool
    load_identities(extra)                          -> Identities   $SOPS_AGE_KEY, … + extra
    generate_identity()                             -> (identity, recipient)
    find_creation_rule(path)                        -> CreationRule     from .sops.yaml
    EditSession / rotate_document / update_keys     editing, new data key, re-wrapping

Files are the SOPS format, readable and writable by the ``sops`` binary: every value
AES-256-GCM encrypted under one data key with its key path as associated data, the data key
wrapped for each age recipient, a MAC over all values checked on every decrypt. Comments are
encrypted too. Decrypted values live in memory only; nothing here writes a file.

Every failure is a ``SecretsError`` naming the file and key path; no message ever holds a
plaintext value or a private key. This piece imports only ``tether.core`` and ``tether.errors``.
See ``docs/secrets.md`` for the format and what differs from sops.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tether.errors import SecretsError
from tether.secrets import _age
from tether.secrets._age import Identities, default_key_file
from tether.secrets._config import CreationRule, find_config, find_creation_rule
from tether.secrets._document import (
    EditSession,
    Format,
    KeyChanges,
    decrypt_data,
    decrypt_document,
    encrypt_document,
    extract,
    format_for_path,
    is_encrypted,
    key_changes,
    recipients_of,
    rotate_document,
    update_keys,
)
from tether.secrets._metadata import FORMAT_VERSION, EncryptionRules

__all__ = [
    "FORMAT_VERSION",
    "CreationRule",
    "EditSession",
    "EncryptionRules",
    "Format",
    "Identities",
    "KeyChanges",
    "SecretsError",
    "decrypt_document",
    "decrypt_tree",
    "decrypt_trees",
    "default_key_file",
    "encrypt_document",
    "extract",
    "find_config",
    "find_creation_rule",
    "format_for_path",
    "generate_identity",
    "is_encrypted",
    "key_changes",
    "load_identities",
    "recipients_of",
    "rotate_document",
    "update_keys",
]


def load_identities(
    extra: Iterable[str] = (), *, environment: bool = True, source: str = "caller-supplied keys"
) -> Identities:
    """The age identities to decrypt with: each text of ``extra`` (an age key file's content,
    or keys separated by whitespace, e.g. a Kubernetes Secret's values), then — when
    ``environment`` — those sops would find: ``$SOPS_AGE_KEY``, ``$SOPS_AGE_KEY_FILE`` and
    ``$XDG_CONFIG_HOME/sops/age/keys.txt``."""
    found = Identities()
    for index, text in enumerate(extra):
        found += Identities.parse(text, source if index == 0 else f"{source} #{index + 1}")
    if environment:
        found += _age.from_environment()
    return found


def generate_identity() -> tuple[str, str]:
    """A new age X25519 identity and its public recipient: ``("AGE-SECRET-KEY-1…", "age1…")``."""
    return _age.generate()


def decrypt_tree(
    data: dict[str, Any], identities: Identities, *, source: str = "<document>"
) -> dict[str, Any]:
    """Decrypt one already-parsed document (its ``sops`` block included); MAC checked.

    The MAC covers every document of a file, so for a multi-document file use
    ``decrypt_trees`` with all of them. It also covers the values left in clear *as sops types
    them*: files written by sops or Tether quote every string a YAML 1.1 reader (PyYAML, the
    render piece) would read as something else, so parsing them that way is fine; but if such
    quotes were removed by hand (``enabled: on``, still a string to sops), the check fails here
    where ``decrypt_document`` on the file's text succeeds. Dates come back as RFC 3339 strings.
    """
    [document] = decrypt_data([data], identities, source)
    return document


def decrypt_trees(
    documents: Sequence[dict[str, Any]], identities: Identities, *, source: str = "<document>"
) -> list[dict[str, Any]]:
    """Decrypt the parsed documents of one multi-document file together (one MAC covers them)."""
    return decrypt_data(documents, identities, source)
