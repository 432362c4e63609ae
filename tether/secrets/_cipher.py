"""One value in, one ``ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`` out, and back.

AES-256-GCM with the document's 32-byte data key, a random 32-byte IV per value, a 16-byte tag
kept apart from the data, and the value's key path (``app:db:password:``) as associated data,
so a ciphertext moved to another key does not decrypt. The plaintext is Go's spelling of the
value (see ``_go``); ``type`` says how to read it back. Empty strings are not encrypted.

Like sops, a ``Cipher`` remembers the IV of every value it decrypted, so that re-encrypting an
unchanged value after an edit gives the same ciphertext and the diff shows only what changed.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tether.secrets import _go
from tether.secrets._tree import Comment, Timestamp

IV_SIZE = 32
TAG_SIZE = 16
KEY_SIZE = 32

_ENC = re.compile(r"ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")


class ValueFailure(Exception):
    """Why one value could not be decrypted; the message never holds the value."""


def is_ciphertext(value: Any) -> bool:
    return isinstance(value, str) and _ENC.match(value) is not None


def plaintext_of(value: Any) -> tuple[str, bytes]:
    """The sops type name and plaintext bytes of a value (what is encrypted and hashed)."""
    if isinstance(value, Comment):
        return "comment", _utf8(value.text)
    if isinstance(value, str):
        return "str", _utf8(value)
    if isinstance(value, bool):
        return "bool", _go.format_bool(value).encode()
    if isinstance(value, int):
        if not _go.INT64_MIN <= value <= _go.INT64_MAX:
            raise ValueFailure("the integer does not fit in 64 bits, which SOPS requires")
        return "int", str(value).encode()
    if isinstance(value, float):
        return "float", _go.format_float(value).encode()
    if isinstance(value, Timestamp):
        return "time", value.text.encode()
    raise ValueFailure(f"a {type(value).__name__} cannot be encrypted")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueFailure("the text is not valid Unicode (it holds a lone surrogate)") from None


def _from_plaintext(kind: str, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueFailure("the decrypted bytes are not UTF-8 text") from None
    try:
        if kind == "str":
            return text
        if kind == "int":
            return _go.parse_int(text)
        if kind == "float":
            return _go.parse_float(text)
        if kind == "bool":
            return _go.parse_bool(text)
        if kind == "time":
            return _go.rfc3339(text)
        if kind == "comment":
            return Comment(text)
    except ValueError:
        raise ValueFailure(f"the decrypted value is not a valid {kind}") from None
    raise ValueFailure(f"unknown value type {kind!r} (Tether reads str, int, float, bool, time)")


@dataclass
class Cipher:
    """AES-256-GCM under one data key. Nothing of it is shown in a repr."""

    key: bytes = field(repr=False)
    stash: dict[tuple[str, str, bytes], bytes] = field(default_factory=dict, repr=False)
    """The IV of each (path, type, plaintext) decrypted, to re-use for the same value."""
    _used: set[bytes] = field(default_factory=set, repr=False)

    def encrypt(self, value: Any, aad: str) -> str:
        kind, data = plaintext_of(value)
        if not data and kind in ("str", "comment"):
            return ""
        iv = self.stash.get((aad, kind, data))
        if iv is None or iv in self._used:
            iv = secrets.token_bytes(IV_SIZE)
        self._used.add(iv)
        sealed = AESGCM(self.key).encrypt(iv, data, aad.encode())
        body, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
        return f"ENC[AES256_GCM,data:{_b64(body)},iv:{_b64(iv)},tag:{_b64(tag)},type:{kind}]"

    def decrypt(self, text: str, aad: str) -> Any:
        if text == "":
            return ""
        match = _ENC.match(text)
        if match is None:
            raise ValueFailure("it is not in SOPS' ENC[AES256_GCM,…] format")
        try:
            body, iv, tag = (base64.b64decode(part, validate=True) for part in match.groups()[:3])
        except (binascii.Error, ValueError):
            raise ValueFailure("its data, iv or tag is not valid base64") from None
        kind = match.group(4)
        if len(tag) != TAG_SIZE or not iv:
            raise ValueFailure("its iv or tag has the wrong length")
        try:
            data = AESGCM(self.key).decrypt(iv, body + tag, aad.encode())
        except InvalidTag:
            raise ValueFailure(
                "authentication failed: the ciphertext was modified, moved to another key, or "
                "encrypted with another data key"
            ) from None
        value = _from_plaintext(kind, data)
        self.stash[(aad, kind, data)] = iv
        return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
