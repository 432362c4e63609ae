"""Parsing YAML and JSON text into documents that remember the line they start on.

YAML is read by ``tether.core.kubeyaml``, Tether's one YAML reader: values exactly as kubectl
would send them (``=`` is a string, ``2024-01-01`` stays that text, ``1e3`` is
the integer 1000, ``yes`` is true), a key given twice is an error, and ``YamlLimits`` stop
alias bombs, deep nesting and oversized documents before they cost memory.

JSON is read by the standard library with the same limits (size, depth, nodes) and the same
number semantics: a float that kubectl would send as an integer (``2.0``) is one here too.
"""

from __future__ import annotations

import json
from typing import Any

from yaml.nodes import Node

from tether.core import kubeyaml
from tether.core.kubeyaml import DEFAULT_LIMITS, Document, YamlLimitExceeded, YamlLimits

SyntaxProblem = kubeyaml.YamlProblem
"""Text that is not valid YAML or JSON, or breaks a limit (``at(label)`` names file:line)."""

__all__ = ["Document", "SyntaxProblem", "compose", "load_json", "load_yaml"]


def load_yaml(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> list[Document]:
    """Every document of a (multi-document) YAML text, empty documents included as None."""
    return kubeyaml.load_all(text, limits)


def compose(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Node | None:
    """The node tree of a single-document YAML text (None when empty), with positions."""
    return kubeyaml.compose(text, limits)


def load_json(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Document:
    """The single JSON value of ``text`` (an object or a List), within ``limits``."""
    if len(text) > limits.max_document_chars:
        raise YamlLimitExceeded(
            f"this JSON document is larger than {limits.max_document_chars} characters "
            "(YamlLimits.max_document_chars); split it",
            "max_document_chars",
        )
    try:
        data = json.loads(
            text,
            object_pairs_hook=_unique_object,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
        )
    except json.JSONDecodeError as exc:
        raise SyntaxProblem(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from exc
    except RecursionError:
        raise _too_deep(limits) from None
    except ValueError as exc:
        raise SyntaxProblem(f"invalid JSON: {exc}") from exc
    data = _within_limits(data, limits)
    stripped = text.lstrip()
    document = Document(data, text[: len(text) - len(stripped)].count("\n") + 1)
    if _is_list(data):
        document.item_lines = _json_item_lines(text, limits)
    return document


def _within_limits(data: Any, limits: YamlLimits) -> Any:
    """``data`` with floats as kubectl sends them; refuses what is too deep or too large."""
    nodes = 0
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise YamlLimitExceeded(
                f"more than {limits.max_nodes} JSON values (YamlLimits.max_nodes); split the file",
                "max_nodes",
            )
        if isinstance(value, dict | list):
            if depth >= limits.max_depth:
                raise _too_deep(limits)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(item, float):
                    value[key] = _as_sent(item)
                else:
                    pending.append((item, depth + 1))
    return _as_sent(data) if isinstance(data, float) else data


def _as_sent(number: float) -> Any:
    return kubeyaml.to_json(number)


def _too_deep(limits: YamlLimits) -> YamlLimitExceeded:
    return YamlLimitExceeded(
        f"JSON nested deeper than {limits.max_depth} levels (YamlLimits.max_depth); flatten it",
        "max_depth",
    )


def _parse_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text} is out of range (kubectl refuses it too)")
    return number


def _is_list(data: Any) -> bool:
    return isinstance(data, dict) and str(data.get("kind", "")).endswith("List")


def _json_item_lines(text: str, limits: YamlLimits) -> list[int]:
    """Best effort: JSON is (nearly always) YAML, whose parser knows where each item starts."""
    try:
        return kubeyaml.load_all(text, limits)[0].item_lines
    except (SyntaxProblem, IndexError):
        return []


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
