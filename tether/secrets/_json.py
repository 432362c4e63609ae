"""Reading and writing JSON documents the way sops does.

One top-level object per file; key order kept; numbers are integers when they fit in 64 bits
and are written without a fraction or exponent, floats otherwise (Go's ``json.Number`` rules).
Output is indented with a tab and ends with a newline, like sops' default.

Reading applies the limits of Tether's one YAML reader (``tether.core.kubeyaml.YamlLimits``):
a file larger than a document may be, or nested deeper than ``max_depth``, is refused with the
file and the limit named before any other code walks it (and no ``RecursionError`` escapes).
"""

from __future__ import annotations

import json
import math
from typing import Any

from tether.core.kubeyaml import DEFAULT_LIMITS
from tether.errors import SecretsError
from tether.secrets import _go
from tether.secrets._tree import Branch, Comment, Pair, Timestamp


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> Branch:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen.add(key)
    return Branch([Pair(key, value) for key, value in pairs])


def _integer(text: str) -> int | float:
    value = int(text)
    if _go.INT64_MIN <= value <= _go.INT64_MAX:
        return value
    return _float(text)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(text: str, source: str) -> list[Branch]:
    limits = DEFAULT_LIMITS
    if len(text) > limits.max_document_chars:
        raise SecretsError(
            f"{source}: larger than {limits.max_document_chars} characters "
            "(YamlLimits.max_document_chars); split the file"
        )
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
        )
    except _Duplicate as duplicate:
        raise SecretsError(
            f"{source}: not valid for SOPS: key {duplicate.key!r} appears twice in one object"
        ) from None
    except json.JSONDecodeError as error:
        raise SecretsError(
            f"{source}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}"
        ) from None
    except RecursionError:
        raise _too_deep(source) from None
    except ValueError as error:
        raise SecretsError(f"{source}: not valid JSON: {error}") from None
    _check_depth(data, source)
    if not isinstance(data, Branch):
        raise SecretsError(
            f"{source}: SOPS only supports JSON files whose top level is an object; wrap the "
            'value in one, e.g. {"data": [...]}'
        )
    return [data]


def _check_depth(data: Any, source: str) -> None:
    """Refuse objects and arrays nested deeper than ``YamlLimits.max_depth`` (iteratively)."""
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if not isinstance(value, Branch | list):
            continue
        if depth > DEFAULT_LIMITS.max_depth:
            raise _too_deep(source)
        children = [pair.value for pair in value.pairs()] if isinstance(value, Branch) else value
        pending.extend((child, depth + 1) for child in children)


def _too_deep(source: str) -> SecretsError:
    return SecretsError(
        f"{source}: JSON nested deeper than {DEFAULT_LIMITS.max_depth} levels "
        "(YamlLimits.max_depth); flatten it"
    )


def dump_json(documents: list[Branch]) -> str:
    if len(documents) != 1:
        raise SecretsError("a JSON file holds exactly one document")
    return _encode(documents[0], 0) + "\n"


def dump_json_value(value: Any) -> str:
    return _encode(value, 0) + "\n"


def _encode(value: Any, depth: int) -> str:
    if isinstance(value, Branch):
        pairs = list(value.pairs())
        if not pairs:
            return "{}"
        inner = "\t" * (depth + 1)
        body = ",\n".join(
            f"{inner}{_string(pair.key)}: {_encode(pair.value, depth + 1)}" for pair in pairs
        )
        return "{\n" + body + "\n" + "\t" * depth + "}"
    if isinstance(value, list):
        items = [item for item in value if not isinstance(item, Comment)]
        if not items:
            return "[]"
        inner = "\t" * (depth + 1)
        body = ",\n".join(inner + _encode(item, depth + 1) for item in items)
        return "[\n" + body + "\n" + "\t" * depth + "]"
    if value is None or isinstance(value, bool | int):
        return json.dumps(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SecretsError("JSON cannot hold NaN or infinite numbers")
        return json.dumps(value)
    if isinstance(value, Timestamp):
        return _string(value.text)
    if isinstance(value, str):
        return _string(value)
    raise SecretsError(f"cannot write a {type(value).__name__} as JSON")  # pragma: no cover


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
