"""Masking: secret values never reach a measurement, a message or an error.

A metric knows the values that are secret once its template is instantiated: the values of
arguments taken from a Secret (``valueFrom.secretKeyRef``), and of headers marked secret (or
named Authorization, Proxy-Authorization or Cookie). Every message and every string inside a
measured value passes through :meth:`Mask.apply` before it is recorded, so an error that quotes a
URL with a token in it, or a server that echoes a header back, leaves ``***`` in its place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

HIDDEN = "***"
ALWAYS_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True)
class Mask:
    """The secret values of one metric; longest first, so a value containing another is hidden
    whole."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Mask:
        unique = {secret for secret in secrets if secret}
        return cls(tuple(sorted(unique, key=len, reverse=True)))

    def merge(self, other: Mask) -> Mask:
        return Mask.of((*self.secrets, *other.secrets))

    def text(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        return text

    def apply(self, value: Any) -> Any:
        """``value`` with every secret hidden in each string it holds (keys too)."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.apply(item) for item in value]
        if isinstance(value, dict):
            return {self.apply(key): self.apply(item) for key, item in value.items()}
        return value
