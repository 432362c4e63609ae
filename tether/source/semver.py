"""Semantic versions and npm-style ranges, for refs like ``semver:>=1.2.0 <2.0.0``.

    fetch(url, "semver:^1.4")   ->  the highest tag matching the range, resolved like a tag

A tag is a version when it is ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` exactly as semver.org
writes it (no leading zeros), optionally after a ``v``: ``v1.2.3``, ``1.10.0-rc.1``. Other tags
are ignored. Versions are ordered by semver precedence (build metadata does not count; two tags of
the same precedence are ordered by name).

A range is the npm / Masterminds syntax:

    =1.2.3  >1.2  >=1.2.3  <2  <=1.4.x     a comparator; a missing or x/X/* part is a wildcard
    1.2.3   1.2   1.x   *                  no operator: that version, or every version it covers
    ~1.4.2  ~1.4  ~1  (also ~>)            same minor when given (>=1.4.2 <1.5.0), else major
    ^1.4.2  ^0.4.2  ^0.0.3  ^1  ^0.x       same left-most non-zero part (>=0.4.2 <0.5.0)
    1.2 - 1.4                              inclusive hyphen range (>=1.2.0 <1.5.0)
    >=1.2.0 <2.0.0   >=1.2.0, <2.0.0       space (or comma) means AND
    ^1 || ^2                               || means OR

Pre-releases are left out unless the alternative (the part between ``||``) that would match them
names a pre-release itself: ``>=2.0.0-0`` matches ``2.1.0-rc.1``, ``>=2.0.0`` and ``^2`` do
not. Implicit upper bounds stop below the next version's pre-releases (``^1`` is
``>=1.0.0 <2.0.0-0``), so ``2.0.0-rc.1`` never satisfies ``^1``.

Everything above is pure; ``latest_tag`` is the one function that reads a mirror.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import total_ordering
from typing import TYPE_CHECKING, Literal, TypeGuard

from tether.errors import SourceError

if TYPE_CHECKING:
    from tether.source.mirror import Mirror

PREFIX = "semver:"

_NUMBER = r"0|[1-9][0-9]*"
_IDENTIFIER = r"[0-9A-Za-z-]+"
_DOTTED = rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*"
_VERSION = re.compile(
    rf"v?(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>{_DOTTED}))?(?:\+(?P<build>{_DOTTED}))?"
)
_WILD = r"[xX*]"
_WILDCARDS = ("x", "X", "*")
_PART = rf"{_NUMBER}|{_WILD}"
_PARTIAL = re.compile(
    rf"[vV]?(?P<major>{_PART})(?:\.(?P<minor>{_PART})(?:\.(?P<patch>{_PART})"
    rf"(?:-(?P<pre>{_DOTTED}))?(?:\+(?P<build>{_DOTTED}))?)?)?"
)
_TOKEN = re.compile(r"(?P<op>~>|~|\^|>=|<=|>|<|=)?\s*(?P<version>[0-9A-Za-z.*+-]+)")
_HYPHEN = re.compile(r"\s*(?P<low>\S+)\s+-\s+(?P<high>\S+)\s*")
_MAX_RANGE = 256
_SHOWN = 6

Operator = Literal["<", "<=", ">", ">=", "="]


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version; ``<`` and ``==`` follow semver precedence (build ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """The version ``text`` (``1.2.3``, ``v1.2.3-rc.1+build``) is, or None if it is none."""
        match = _VERSION.fullmatch(text)
        if match is None:
            return None
        prerelease = _prerelease(match["pre"])
        if prerelease is None:
            return None
        build = tuple(match["build"].split(".")) if match["build"] else ()
        return cls(int(match["major"]), int(match["minor"]), int(match["patch"]), prerelease, build)

    @property
    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        """What precedence compares: a release ranks above its pre-releases, numbers below words."""
        identifiers = tuple(
            (0, part, "") if isinstance(part, int) else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, identifiers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key == other.key

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(part) for part in self.prerelease)
        return text + ("+" + ".".join(self.build) if self.build else "")


def _prerelease(text: str | None) -> tuple[int | str, ...] | None:
    """``rc.1`` -> ``("rc", 1)``; None when a numeric identifier has a leading zero."""
    if not text:
        return ()
    parts: list[int | str] = []
    for part in text.split("."):
        if part.isdigit():
            if len(part) > 1 and part.startswith("0"):
                return None
            parts.append(int(part))
        else:
            parts.append(part)
    return tuple(parts)


# The lowest version there is: "< FLOOR" matches nothing.
_FLOOR = Version(0, 0, 0, (0,))


@dataclass(frozen=True)
class Comparator:
    """``op version``, e.g. ``>= 1.2.0``."""

    op: Operator
    version: Version

    def matches(self, version: Version) -> bool:
        if self.op == "<":
            return version < self.version
        if self.op == "<=":
            return version <= self.version
        if self.op == ">":
            return version > self.version
        if self.op == ">=":
            return version >= self.version
        return version == self.version

    def __str__(self) -> str:
        return f"{self.op}{self.version}"


@dataclass(frozen=True)
class Alternative:
    """Comparators that must all hold (one side of ``||``); no comparators means any version."""

    comparators: tuple[Comparator, ...]
    prereleases: bool
    """True when the text names a pre-release, which lets pre-releases match at all."""

    def matches(self, version: Version) -> bool:
        if version.prerelease and not self.prereleases:
            return False
        return all(comparator.matches(version) for comparator in self.comparators)

    def __str__(self) -> str:
        return " ".join(str(c) for c in self.comparators) or "*"


@dataclass(frozen=True)
class Range:
    """A parsed range: ``text`` as written and its alternatives, any of which may match."""

    text: str
    alternatives: tuple[Alternative, ...]

    def matches(self, version: Version) -> bool:
        return any(alternative.matches(version) for alternative in self.alternatives)

    def highest(self, tags: Iterable[str]) -> str | None:
        """The tag with the highest matching version (ties: the greatest name), or None."""
        matching = [(version, tag) for tag, version in versions(tags) if self.matches(version)]
        return max(matching)[1] if matching else None

    def nearest(self, tags: Iterable[str], count: int = _SHOWN) -> list[str]:
        """Up to ``count`` version tags closest to the range's lowest bound, in version order."""
        ordered = sorted((version, tag) for tag, version in versions(tags))
        bounds = [c.version for a in self.alternatives for c in a.comparators]
        anchor = min(bounds, default=Version(0, 0, 0))
        position = sum(1 for version, _ in ordered if version < anchor)
        start = max(0, min(position - count // 2, len(ordered) - count))
        return [tag for _, tag in ordered[start : start + count]]

    def excluded_prereleases(self, tags: Iterable[str]) -> bool:
        """True when some pre-release tag would match if pre-releases were allowed."""
        widened = [Alternative(a.comparators, prereleases=True) for a in self.alternatives]
        return any(
            version.prerelease and any(a.matches(version) for a in widened)
            for _, version in versions(tags)
        )

    def __str__(self) -> str:
        return " || ".join(str(a) for a in self.alternatives)


def versions(tags: Iterable[str]) -> list[tuple[str, Version]]:
    """The tags that are versions, each with its version."""
    found = []
    for tag in tags:
        version = Version.parse(tag)
        if version is not None:
            found.append((tag, version))
    return found


class RangeError(ValueError):
    """A range that cannot be parsed; the message says which part and why."""


def parse_range(text: str) -> Range:
    """Parse an npm-style range (see the module docstring); raise ``RangeError`` if malformed."""
    if len(text) > _MAX_RANGE:
        raise RangeError(f"longer than {_MAX_RANGE} characters")
    if not text.strip():
        raise RangeError("empty; write e.g. '*' for any release")
    return Range(text, tuple(_alternative(part) for part in text.split("||")))


def _alternative(text: str) -> Alternative:
    if not text.strip():
        raise RangeError("an empty alternative around '||'")
    hyphen = _HYPHEN.fullmatch(text)
    if hyphen:
        low, high = _partial(hyphen["low"]), _partial(hyphen["high"])
        comparators = (*_at_least(low), *_at_most(high))
        return Alternative(comparators, low.names_prerelease or high.names_prerelease)
    tokens = list(_tokens(text))
    comparators = tuple(c for op, partial in tokens for c in _desugar(op, partial))
    return Alternative(comparators, any(partial.names_prerelease for _, partial in tokens))


def _tokens(text: str) -> Iterator[tuple[str, _Partial]]:
    """``(operator, partial version)`` for each comparator, separated by spaces or commas."""
    position = 0
    while True:
        while position < len(text) and (text[position].isspace() or text[position] == ","):
            position += 1
        if position == len(text):
            return
        token = _TOKEN.match(text, position)
        if token is None:
            raise RangeError(f"unexpected {text[position:].split(maxsplit=1)[0]!r}")
        yield token["op"] or "=", _partial(token["version"])
        position = token.end()


@dataclass(frozen=True)
class _Partial:
    """A version with parts possibly missing or wildcards (None), e.g. ``1.2`` or ``1.x``."""

    major: int | None
    minor: int | None
    patch: int | None
    prerelease: tuple[int | str, ...] = ()

    @property
    def names_prerelease(self) -> bool:
        return bool(self.prerelease)

    def floor(self) -> Version:
        """The lowest version it covers: missing parts are 0."""
        return Version(self.major or 0, self.minor or 0, self.patch or 0, self.prerelease)

    def ceiling(self) -> Version:
        """The first version above everything it covers (only when a part is missing)."""
        major = self.major or 0
        if self.minor is None:
            return Version(major + 1, 0, 0, (0,))
        return Version(major, self.minor + 1, 0, (0,))


def _partial(text: str) -> _Partial:
    match = _PARTIAL.fullmatch(text)
    if match is None:
        raise RangeError(f"{text!r} is not a version (write 1.2.3, 1.2, 1.x or *)")
    parts: list[int | None] = []
    for name in ("major", "minor", "patch"):
        part = match[name]
        wild = part is None or part in _WILDCARDS or (bool(parts) and parts[-1] is None)
        parts.append(None if wild else int(part))
    prerelease = _prerelease(match["pre"])
    if prerelease is None:
        raise RangeError(f"{text!r}: a numeric pre-release part has a leading zero")
    if prerelease and parts[2] is None:
        raise RangeError(f"{text!r}: a pre-release needs a full version (1.2.3-rc.1)")
    return _Partial(parts[0], parts[1], parts[2], prerelease)


def _desugar(op: str, p: _Partial) -> list[Comparator]:
    """The plain comparators that ``op p`` means (see the module docstring)."""
    if op in ("~", "~>"):
        return _tilde(p)
    if op == "^":
        return _caret(p)
    if op == "=":
        if p.patch is not None:
            return [Comparator("=", p.floor())]
        return [*_at_least(p), *_at_most(p)]
    if op == ">=":
        return _at_least(p)
    if op == "<=":
        return _at_most(p)
    if op == ">":
        if p.major is None:
            return [Comparator("<", _FLOOR)]
        if p.patch is None:
            return [Comparator(">=", _without_prerelease(p.ceiling()))]
        return [Comparator(">", p.floor())]
    # "<"
    if p.major is None:
        return [Comparator("<", _FLOOR)]
    if p.patch is None:
        return [Comparator("<", Version(p.major, p.minor or 0, 0, (0,)))]
    return [Comparator("<", p.floor())]


def _at_least(p: _Partial) -> list[Comparator]:
    return [] if p.major is None else [Comparator(">=", p.floor())]


def _at_most(p: _Partial) -> list[Comparator]:
    if p.major is None:
        return []
    if p.patch is None:
        return [Comparator("<", p.ceiling())]
    return [Comparator("<=", p.floor())]


def _tilde(p: _Partial) -> list[Comparator]:
    if p.major is None:
        return []
    if p.minor is None:
        return [*_at_least(p), Comparator("<", p.ceiling())]
    return [*_at_least(p), Comparator("<", Version(p.major, p.minor + 1, 0, (0,)))]


def _caret(p: _Partial) -> list[Comparator]:
    if p.major is None:
        return []
    if p.major > 0 or p.minor is None:
        upper = Version(p.major + 1, 0, 0, (0,))
    elif p.minor > 0 or p.patch is None:
        upper = Version(0, p.minor + 1, 0, (0,))
    else:
        upper = Version(0, 0, p.patch + 1, (0,))
    return [*_at_least(p), Comparator("<", upper)]


def _without_prerelease(version: Version) -> Version:
    return Version(version.major, version.minor, version.patch)


def is_range_ref(ref: str | None) -> TypeGuard[str]:
    """True for a ref of the form ``semver:<range>``."""
    return ref is not None and ref.startswith(PREFIX)


def parse_range_ref(ref: str, display: str) -> Range:
    """The range in ``semver:<range>``; ``SourceError`` naming the URL when it is malformed."""
    text = ref.removeprefix(PREFIX)
    try:
        return parse_range(text)
    except RangeError as error:
        raise SourceError(
            f"invalid semver range {text!r} for {display}: {error}; write e.g. "
            "'semver:>=1.2.0 <2.0.0', 'semver:~1.4', 'semver:^2' or 'semver:1.x'"
        ) from None


def latest_tag(mirror: Mirror, ref: str) -> tuple[str, str]:
    """``(tag, commit)`` for the highest tag of the (updated) mirror in the range ``ref`` names."""
    display = mirror.git.remote.display
    wanted = parse_range_ref(ref, display)
    mirror.update()
    tags = mirror.ref_names("tags")
    tag = wanted.highest(tags)
    commit = mirror.lookup([f"refs/tags/{tag}"]) if tag is not None else None
    if tag is None or commit is None:
        raise SourceError(_no_match(wanted, tags, display))
    return tag, commit


def _no_match(wanted: Range, tags: list[str], display: str) -> str:
    message = f"no tag of {display} matches the semver range {wanted.text!r}"
    nearest = wanted.nearest(tags)
    if not nearest:
        shown = ", ".join(tags[:_SHOWN]) + (", …" if len(tags) > _SHOWN else "")
        message += f": it has no version tags (tags: {shown or 'none'})"
    else:
        message += f" (nearest version tags: {', '.join(nearest)})"
        if wanted.excluded_prereleases(tags):
            message += (
                "; pre-release tags match only when the range names a pre-release, e.g. '>=2.0.0-0'"
            )
    return message + "; push a matching tag or change the range"
