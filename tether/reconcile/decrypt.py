"""Decrypting SOPS-encrypted manifests at sync time, in memory only.

Rendered manifests that carry SOPS metadata are grouped by the file they came from (one MAC
covers every document of a file), decrypted with age identities from a Kubernetes Secret, key
files or the environment, and stripped of their ``sops`` block. Every decrypted value is
remembered in a ``Redactor`` so that no output channel (errors, diffs, audit rows, alerts) can
show it, whatever kind of object it sits in.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.cluster.client import KubeClient
from tether.core import Manifest
from tether.errors import SecretsError
from tether.notify.redact import spellings

if TYPE_CHECKING:
    from tether.secrets import Identities

_ENCRYPTED = re.compile(r"^ENC\[AES256_GCM,")
REDACTED = "*** (decrypted value)"
_SHORTEST_REDACTED = 3


@dataclass
class Redactor:
    """The plaintexts decrypted during one sync, and a scrubber for any text Tether emits.

    A value is masked in every spelling an error or a response can give it (Go-quoted by the API
    server, JSON-escaped, base64, percent-encoded: ``tether.notify.redact.spellings``), longest
    first, so that a value with a quote, a newline, a tab or a backslash is masked in the
    server's echo too. ``scrub_object`` masks values inside objects before they are printed as
    YAML (a diff), where line folding would defeat any search in the text.
    """

    values: set[str] = field(default_factory=set)
    _needles: list[str] = field(default_factory=list, repr=False)

    def add_from(
        self, encrypted: Any, decrypted: Any, at: tuple[str | int, ...] = ()
    ) -> list[tuple[str | int, ...]]:
        """Remember every value that was ``ENC[…]`` in ``encrypted``; their paths."""
        paths: list[tuple[str | int, ...]] = []
        if isinstance(encrypted, dict) and isinstance(decrypted, dict):
            for key, value in encrypted.items():
                if key in decrypted:
                    paths += self.add_from(value, decrypted[key], (*at, key))
        elif isinstance(encrypted, list) and isinstance(decrypted, list):
            for index, (old, new) in enumerate(zip(encrypted, decrypted, strict=False)):
                paths += self.add_from(old, new, (*at, index))
        elif isinstance(encrypted, str) and _ENCRYPTED.match(encrypted) and decrypted is not None:
            self.add(str(decrypted))
            paths.append(at)
        return paths

    def add(self, value: str) -> None:
        """Mask ``value`` (too short a value is not: masking every ``ab`` protects nothing)."""
        if len(value) >= _SHORTEST_REDACTED and value not in self.values:
            self.values.add(value)
            needles = set(self._needles) | {s for s in spellings(value) if len(s) >= 3}
            self._needles = sorted(needles, key=len, reverse=True)

    def add_secret_data(self, body: dict[str, Any]) -> None:
        """A decrypted Secret's ``data`` values are base64: mask what they decode to as well."""
        if body.get("kind") != "Secret" or not isinstance(body.get("data"), dict):
            return
        for value in body["data"].values():
            if isinstance(value, str) and value in self.values:
                with contextlib.suppress(binascii.Error, ValueError):
                    self.add(base64.b64decode(value, validate=True).decode())

    def scrub(self, text: str) -> str:
        for needle in self._needles:
            text = text.replace(needle, REDACTED)
        return text

    def scrub_object(self, obj: Any) -> Any:
        """A copy of ``obj`` with every decrypted value masked wherever it occurs in a string."""
        if not self.values:
            return obj
        if isinstance(obj, dict):
            return {key: self.scrub_object(value) for key, value in obj.items()}
        if isinstance(obj, list):
            return [self.scrub_object(item) for item in obj]
        if isinstance(obj, str):
            return self.scrub(obj)
        if obj is not None and not isinstance(obj, bool) and str(obj) in self.values:
            return REDACTED
        return obj


@dataclass(frozen=True)
class KeySources:
    """Where age identities come from: a Kubernetes Secret (``namespace/name``, every value is
    read as key text), key files, and — like sops — the environment."""

    secret: str = ""
    files: tuple[str, ...] = ()
    environment: bool = True


def needs_decryption(manifests: Iterable[Manifest]) -> bool:
    # tether.secrets (age, AES) is imported only when some manifest carries a ``sops`` block.
    candidates = [m for m in manifests if "sops" in m.body]
    if not candidates:
        return False
    from tether.secrets import is_encrypted

    return any(is_encrypted(m.body) for m in candidates)


async def _key_texts(client: KubeClient, keys: KeySources) -> list[tuple[str, str]]:
    texts = []
    for path in keys.files:
        try:
            texts.append((Path(path).read_text(), f"key file {path}"))
        except OSError as error:
            raise SecretsError(f"cannot read age key file {path}: {error.strerror}") from None
    if keys.secret:
        namespace, _, name = keys.secret.partition("/")
        secret = await client.get(await client.resource("v1", "Secret"), namespace, name)
        if secret is None:
            raise SecretsError(
                f"decryption keys: Secret {keys.secret} not found; create it with the age identity"
            )
        for key, value in (secret.get("data") or {}).items():
            texts.append((base64.b64decode(value).decode(), f"Secret {keys.secret} key {key}"))
    return texts


async def decrypt_manifests(
    client: KubeClient, manifests: list[Manifest], keys: KeySources, redactor: Redactor
) -> list[Manifest]:
    """The manifests with every encrypted file decrypted (raises ``SecretsError`` naming the
    file when no identity fits or the file was tampered with)."""
    if not needs_decryption(manifests):
        return manifests
    from tether.secrets import decrypt_trees, is_encrypted

    identities = await _identities(client, keys)
    by_file: dict[str, list[int]] = defaultdict(list)
    for index, manifest in enumerate(manifests):
        if is_encrypted(manifest.body):
            by_file[manifest.source.path].append(index)
    result = list(manifests)
    for path, indexes in by_file.items():
        originals = [manifests[i].body for i in indexes]
        clear = decrypt_trees(originals, identities, source=path)
        for index, original, body in zip(indexes, originals, clear, strict=True):
            paths = tuple(redactor.add_from(original, body))
            redactor.add_secret_data(body)
            result[index] = Manifest(body, manifests[index].source, decrypted=paths)
    return result


async def decrypt_values(
    client: KubeClient, values: dict[str, Any], label: str, keys: KeySources, redactor: Redactor
) -> dict[str, Any]:
    """A chart's values file, decrypted in memory when it is SOPS-encrypted (every decrypted
    value remembered by ``redactor``); as it is otherwise."""
    if "sops" not in values:
        return values
    from tether.secrets import decrypt_trees, is_encrypted

    if not is_encrypted(values):
        return values
    clear = decrypt_trees([values], await _identities(client, keys), source=label)[0]
    redactor.add_from(values, clear)
    return clear


async def _identities(client: KubeClient, keys: KeySources) -> Identities:
    from tether.secrets import load_identities

    texts = await _key_texts(client, keys)
    return load_identities(
        [t for t, _ in texts],
        environment=keys.environment,
        source=texts[0][1] if texts else "caller-supplied keys",
    )
