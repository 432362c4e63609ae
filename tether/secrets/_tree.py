"""The document model every other module of this piece works on, shaped like sops' own tree.

A document is a ``Branch``: an *ordered* list of ``Pair`` entries and ``Comment`` lines (YAML
comments live between the entries they sit between, the way sops keeps them). Sequences are
plain lists, which may hold ``Comment`` items too. Scalars are ``None``, ``bool``, ``int``,
``float``, ``str`` and ``Timestamp`` (YAML's unquoted dates, which sops treats as Go times).

``to_plain`` / ``from_plain`` convert to and from the dicts and lists the rest of Tether uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from tether.errors import SecretsError


@dataclass
class Comment:
    """One comment line, without its ``#``. ``inline`` when it followed a value on its line."""

    text: str
    inline: bool = False


@dataclass(frozen=True)
class Timestamp:
    """A YAML timestamp, held as Go's RFC 3339 text of it (what sops hashes and encrypts)."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class Pair:
    key: str
    value: Any


Entry: TypeAlias = Pair | Comment


@dataclass
class Branch:
    """An ordered mapping that keeps the comments between its entries."""

    entries: list[Entry] = field(default_factory=list)

    def pairs(self) -> Iterator[Pair]:
        return (entry for entry in self.entries if isinstance(entry, Pair))

    def get(self, key: str) -> Any:
        for pair in self.pairs():
            if pair.key == key:
                return pair.value
        return None

    def has(self, key: str) -> bool:
        return any(pair.key == key for pair in self.pairs())

    def remove(self, key: str) -> None:
        self.entries = [e for e in self.entries if not (isinstance(e, Pair) and e.key == key)]


def to_plain(value: Any) -> Any:
    """Dicts, lists and scalars, comments dropped and timestamps as their RFC 3339 text."""
    if isinstance(value, Branch):
        return {pair.key: to_plain(pair.value) for pair in value.pairs()}
    if isinstance(value, list):
        return [to_plain(item) for item in value if not isinstance(item, Comment)]
    if isinstance(value, Timestamp):
        return value.text
    return value


def from_plain(value: Any, where: str = "") -> Any:
    """The tree of a plain value (as PyYAML or json produce), keys checked to be strings."""
    if isinstance(value, Mapping):
        branch = Branch()
        for key, item in value.items():
            if not isinstance(key, str):
                raise SecretsError(
                    f"{where or 'the document'} has a non-string key ({type(key).__name__}); "
                    "SOPS supports string keys only"
                )
            branch.entries.append(Pair(key, from_plain(item, f"{where}.{key}" if where else key)))
        return branch
    if isinstance(value, list | tuple):
        return [from_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dt.datetime | dt.date):
        return Timestamp(_datetime_text(value))
    if value is None or isinstance(value, bool | int | float | str | Timestamp | Comment):
        return value
    raise SecretsError(
        f"{where or 'the document'} holds a {type(value).__name__}, which SOPS cannot encrypt"
    )


def _datetime_text(value: dt.date) -> str:
    """Go's ``time.Time.MarshalText`` of a Python date or datetime (naive ones are UTC)."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    offset = value.utcoffset() if value.tzinfo else dt.timedelta(0)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
