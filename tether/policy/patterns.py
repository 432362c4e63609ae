"""Name patterns of tether.yaml ``naming.rules``: ``<app>-<component>``, ``<app>[-<component>]``.

Placeholders: ``<app>``, ``<env>``, ``<team>`` (the unit's own values), ``<component>`` and
``<any>`` (any DNS-1123 label). Brackets make a part optional; everything else is literal.
"""

from __future__ import annotations

import re

from tether.errors import TetherError

PLACEHOLDERS = ("app", "env", "team", "component", "any")
_LABEL = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_TOKEN = re.compile(r"<([a-z]+)>|\[|\]|[^<\[\]]+|<")


class PatternError(TetherError):
    """A naming pattern that cannot be compiled."""


def placeholders(pattern: str) -> set[str]:
    return set(re.findall(r"<([a-z]+)>", pattern))


def compile_pattern(pattern: str, values: dict[str, str]) -> re.Pattern[str]:
    """The regular expression for ``pattern`` with ``values`` filled in (``app``, ``env``,
    ``team``); ``PatternError`` for an unknown placeholder or unbalanced brackets."""
    out: list[str] = []
    depth = 0
    for match in _TOKEN.finditer(pattern):
        text = match.group(0)
        name = match.group(1)
        if name is not None:
            if name not in PLACEHOLDERS:
                raise PatternError(
                    f"naming pattern {pattern!r}: unknown placeholder <{name}> "
                    f"(use {', '.join(f'<{p}>' for p in PLACEHOLDERS)})"
                )
            out.append(re.escape(values[name]) if name in values else _LABEL)
        elif text == "[":
            depth += 1
            out.append("(?:")
        elif text == "]":
            depth -= 1
            if depth < 0:
                raise PatternError(f"naming pattern {pattern!r}: ']' without '['")
            out.append(")?")
        else:
            out.append(re.escape(text))
    if depth:
        raise PatternError(f"naming pattern {pattern!r}: '[' without ']'")
    return re.compile("".join(out))
