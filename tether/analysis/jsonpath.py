"""A small, documented subset of JSONPath, enough to pick a field out of a JSON answer.

Accepted (each path starts with ``$``; Kubernetes-style braces ``{$.data.ok}`` are accepted too):

    $                    the whole document
    .name  ['name']      a member of an object ("name" in double quotes works too)
    [0]  [-1]            an element of an array, negative from the end
    [*]  .*              every element (or member value); the result is then a list

Filters (``[?(...)]``), slices (``[1:3]``), unions and recursive descent (``..``) are refused
when the template is read, naming the path, rather than half-supported. A path that matches
nothing gives ``NO_MATCH`` (an empty result for the metric). No library: the subset is these
forty lines, and the well-kept JSONPath libraries either lack the Kubernetes brace form or bring
a parser generator for features this does not need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NO_MATCH: Any = object()
_WILDCARD = "*"
_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w-]*|\*)"""
    r"""|\[\s*(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<index>-?\d+)|(?P<star>\*))\s*\]"""
)


class JsonPathError(ValueError):
    """A path outside the accepted subset."""


@dataclass(frozen=True)
class JsonPath:
    """A parsed path: a list of member names (str), indexes (int) and wildcards."""

    source: str
    steps: tuple[str | int, ...]

    @classmethod
    def parse(cls, source: str) -> JsonPath:
        text = source.strip()
        if text.startswith("{") and text.endswith("}"):
            text = text[1:-1].strip()
        if not text.startswith("$"):
            raise JsonPathError(f"JSON path {source!r} must start with '$' (as in '$.data.ok')")
        steps: list[str | int] = []
        position = 1
        while position < len(text):
            match = _STEP.match(text, position)
            if match is None:
                raise JsonPathError(
                    f"JSON path {source!r}: {text[position:]!r} is outside the subset Tether "
                    "reads (.name, ['name'], [0], [*]); filters, slices and '..' are not read"
                )
            steps.append(_step(match))
            position = match.end()
        return cls(source, tuple(steps))

    def find(self, document: Any) -> Any:
        """The value at the path, a list of values after a wildcard, or NO_MATCH."""
        return _walk(document, self.steps)


def _step(match: re.Match[str]) -> str | int:
    if match["index"] is not None:
        return int(match["index"])
    if match["star"] is not None or match["name"] == _WILDCARD:
        return _WILDCARD
    return next(
        group for group in (match["name"], match["single"], match["double"]) if group is not None
    )


def _walk(value: Any, steps: tuple[str | int, ...]) -> Any:
    if not steps:
        return value
    step, rest = steps[0], steps[1:]
    if step == _WILDCARD:
        items = value.values() if isinstance(value, dict) else value
        if not isinstance(items, list) and not isinstance(value, dict):
            return NO_MATCH
        found = [_walk(item, rest) for item in items]
        return [item for item in found if item is not NO_MATCH]
    if isinstance(step, int):
        if isinstance(value, list) and -len(value) <= step < len(value):
            return _walk(value[step], rest)
        return NO_MATCH
    if isinstance(value, dict) and step in value:
        return _walk(value[step], rest)
    return NO_MATCH
