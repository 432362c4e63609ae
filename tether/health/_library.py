"""The rule library: ``rules/*.yaml`` inside this package, one file per project, loaded once.

Each file holds the rules for the custom resources of one project (cert-manager, Flux, …), in
the form ``_declarative`` compiles. A mistake in a file is a bug in Tether: loading raises
InvalidHealthCheck naming the file, and the tests load every file.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from tether.health._declarative import DeclaredRule, InvalidHealthCheck, compile_library


@cache
def library() -> dict[tuple[str, str], DeclaredRule]:
    """Every rule of the library by ``(group, kind)``; kind ``*`` stands for any kind."""
    rules: dict[tuple[str, str], DeclaredRule] = {}
    for name, document in sorted(_documents().items()):
        for key, rule in compile_library(document, f"tether/health/rules/{name}").items():
            if key in rules:
                raise InvalidHealthCheck(
                    f"tether/health/rules/{name}: {key[1]}.{key[0]} already has a rule in "
                    f"{rules[key].origin}"
                )
            rules[key] = rule
    return rules


def _documents() -> dict[str, dict[str, Any]]:
    found = {}
    for entry in resources.files("tether.health").joinpath("rules").iterdir():
        if entry.name.endswith(".yaml"):
            document = yaml.safe_load(entry.read_text(encoding="utf-8"))
            if not isinstance(document, dict):
                raise InvalidHealthCheck(f"tether/health/rules/{entry.name}: not a mapping")
            found[entry.name] = document
    return found


def lookup(group: str, kind: str) -> DeclaredRule | None:
    """The library's rule for a kind, or for every kind of its group, or None."""
    rules = library()
    return rules.get((group, kind)) or rules.get((group, "*"))
