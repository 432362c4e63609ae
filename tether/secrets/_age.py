"""age identities and recipients, and wrapping the 32-byte data key for them.

Identities (private keys) are looked for where sops looks: ``$SOPS_AGE_KEY`` (any number of
keys, separated by whitespace or lines), the file named by ``$SOPS_AGE_KEY_FILE``, then
``$XDG_CONFIG_HOME/sops/age/keys.txt`` (``~/.config/sops/age/keys.txt`` when unset). Callers add
their own (the sync path passes the keys of a Kubernetes Secret). All of them are tried.

An ``Identities`` value never shows a private key: not in its repr, not in an error. It keeps
the public recipient of each identity and where each came from, for error messages.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
from pyrage import x25519

from tether.errors import SecretsError
from tether.secrets._cipher import KEY_SIZE
from tether.secrets._metadata import AgeKey

KEY_ENV = "SOPS_AGE_KEY"
KEY_FILE_ENV = "SOPS_AGE_KEY_FILE"


@dataclass(frozen=True)
class Identities:
    """age identities to decrypt with, and where they were looked for."""

    keys: tuple[Any, ...] = field(default=(), repr=False)
    recipients: tuple[str, ...] = ()
    """The public key of each identity (safe to show)."""
    searched: tuple[str, ...] = ()
    """Each place looked in, e.g. ``SOPS_AGE_KEY_FILE=/keys.txt (1 identity)``."""

    @classmethod
    def parse(cls, text: str, source: str) -> Identities:
        """The identities in ``text`` (an age key file, or keys separated by whitespace).

        Lines starting with ``#`` are comments. ``source`` names where the text came from.
        """
        keys: list[Any] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            for word in line.split():
                keys.append(_parse_identity(word, f"{source}, line {number}"))
        count = f"{len(keys)} identit{'y' if len(keys) == 1 else 'ies'}"
        return cls(
            tuple(keys),
            tuple(str(key.to_public()) for key in keys),
            (f"{source} ({count})",),
        )

    @classmethod
    def none_found(cls, place: str) -> Identities:
        return cls(searched=(place,))

    def __add__(self, other: Identities) -> Identities:
        return Identities(
            self.keys + other.keys,
            self.recipients + other.recipients,
            self.searched + other.searched,
        )

    def __bool__(self) -> bool:
        return bool(self.keys)


def _parse_identity(word: str, where: str) -> Any:
    if word.startswith("AGE-PLUGIN-"):
        raise SecretsError(f"{where}: age plugin identities are not supported by Tether")
    if word.startswith("AGE-SECRET-KEY-PQ-"):
        raise SecretsError(f"{where}: post-quantum age identities are not supported by Tether")
    if not word.upper().startswith("AGE-SECRET-KEY-1"):
        raise SecretsError(
            f"{where}: not an age identity (expected AGE-SECRET-KEY-1…; SSH keys are not supported)"
        )
    try:
        return x25519.Identity.from_str(word)
    except (pyrage.IdentityError, ValueError):
        raise SecretsError(f"{where}: not a valid age identity (bad encoding)") from None


def default_key_file() -> Path:
    """``$XDG_CONFIG_HOME/sops/age/keys.txt``, where sops and Tether look by default."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "sops" / "age" / "keys.txt"


def from_environment() -> Identities:
    """The identities found where sops looks for them (see the module docstring)."""
    found = Identities()
    key = os.environ.get(KEY_ENV)
    if key is not None:
        found += Identities.parse(key, KEY_ENV)
    else:
        found += Identities.none_found(f"{KEY_ENV} (not set)")
    key_file = os.environ.get(KEY_FILE_ENV)
    if key_file is not None:
        found += _read_key_file(Path(key_file), f"{KEY_FILE_ENV}={key_file}")
    else:
        found += Identities.none_found(f"{KEY_FILE_ENV} (not set)")
    default = default_key_file()
    if default.is_file():
        found += _read_key_file(default, str(default))
    else:
        found += Identities.none_found(f"{default} (not found)")
    return found


def _read_key_file(path: Path, label: str) -> Identities:
    try:
        text = path.read_text()
    except OSError as error:
        raise SecretsError(f"cannot read age identities from {label}: {error.strerror}") from None
    return Identities.parse(text, label)


def generate() -> tuple[str, str]:
    """A new age identity and its recipient: ``("AGE-SECRET-KEY-1…", "age1…")``."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def parse_recipients(recipients: Iterable[str], where: str) -> list[str]:
    """Recipients checked and normalised; comma-separated lists are split, like sops does."""
    parsed: list[str] = []
    for item in recipients:
        for part in item.split(","):
            recipient = part.strip()
            if not recipient:
                continue
            if not recipient.startswith("age1"):
                raise SecretsError(
                    f"{where}: {recipient!r} is not an age recipient (age1…); SSH, PGP and KMS "
                    "keys are not supported by Tether"
                )
            _recipient(recipient, where)  # plugin and post-quantum recipients fail here
            if recipient not in parsed:
                parsed.append(recipient)
    return parsed


def _recipient(recipient: str, where: str) -> Any:
    try:
        return x25519.Recipient.from_str(recipient)
    except (pyrage.RecipientError, ValueError):
        raise SecretsError(
            f"{where}: {recipient!r} is not a valid age X25519 recipient (plugin and "
            "post-quantum recipients are not supported)"
        ) from None


def wrap(data_key: bytes, recipients: Iterable[str], where: str) -> list[AgeKey]:
    """The data key encrypted for each recipient separately, ASCII-armored like sops stores it."""
    keys = []
    for recipient in parse_recipients(recipients, where):
        armored = pyrage.encrypt(data_key, [_recipient(recipient, where)], armored=True)
        keys.append(AgeKey(recipient, armored.decode("ascii")))
    return keys


def unwrap(
    age_keys: list[AgeKey], identities: Identities, source: str, other_key_types: list[str]
) -> bytes:
    """The data key, from the first age entry one of ``identities`` opens."""
    if not age_keys:
        others = f" (only {', '.join(other_key_types)})" if other_key_types else ""
        raise SecretsError(
            f"cannot decrypt {source}: its data key is not wrapped for any age recipient{others}; "
            "Tether decrypts with age keys only: add an age recipient with `sops updatekeys`"
        )
    if identities:
        for entry in age_keys:
            try:
                data_key = pyrage.decrypt(entry.enc.encode(), list(identities.keys))
            except (pyrage.DecryptError, ValueError):
                continue
            if len(data_key) != KEY_SIZE:
                raise SecretsError(
                    f"cannot decrypt {source}: the data key wrapped for {entry.recipient} is "
                    f"{len(data_key)} bytes long, not {KEY_SIZE}"
                )
            return bytes(data_key)
    recipients = ", ".join(entry.recipient for entry in age_keys)
    have = ", ".join(identities.recipients) or "none"
    searched = "; ".join(identities.searched) or "nowhere"
    raise SecretsError(
        f"cannot decrypt {source}: no age identity matches its recipients. "
        f"Recipients of the file: {recipients}. Identities available (public keys): {have}. "
        f"Looked in: {searched}. Provide the identity of one of the recipients "
        f"(${KEY_FILE_ENV}, ${KEY_ENV} or the default key file)."
    )
