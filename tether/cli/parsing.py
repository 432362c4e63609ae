"""Parsing of command-line values (durations like ``90s``, ``5m``, ``1h30m``)."""

from __future__ import annotations

import re

import typer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a bare number is seconds; otherwise Go-style ``1h30m``, ``90s``."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise typer.BadParameter(f"{text!r} is not a duration: use e.g. 30s, 5m or 1h30m")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)
