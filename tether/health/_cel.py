"""CEL (Common Expression Language) for health checks: compile once, evaluate per object.

An expression sees two variables:

    object       the live object as the API server returns it
    conditions   its ``status.conditions`` by type: ``conditions.Ready.status == "True"``

Expressions are type-checked when compiled, so a misspelt variable, a function that does not
exist or ``1 + "a"`` is refused then, with the position of the mistake, before any sync. The
strings and optional-value extensions are on (``"x".lowerAscii()``, ``object.?status.?phase``),
as in the Kubernetes API server's own CEL. The library is cel-expr-python, the CEL project's
Python binding of its C++ implementation (docs/decisions/0010-cel-for-health-checks.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]  # ships .pyi, no py.typed
from cel_expr_python.ext import ext_optional, ext_strings  # type: ignore[import-untyped]

VARIABLES = ("object", "conditions")


class CelError(Exception):
    """An expression could not be compiled, or evaluating it failed on one object."""


@cache
def _environment() -> cel.Env:
    return cel.NewEnv(
        variables={name: cel.Type.DYN for name in VARIABLES},
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()],
    )


@dataclass(frozen=True)
class Expression:
    """One compiled expression and its source text (for messages)."""

    source: str
    compiled: cel.Expression

    def evaluate(self, activation: Activation) -> object:
        """The plain Python value of the expression for one object; CelError when it fails
        (a field the object lacks, a type that does not fit)."""
        value = self.compiled.eval(activation.native)
        if value.type() == cel.Type.ERROR:
            raise CelError(str(value.value()))
        return value.plain_value()


def compile_expression(source: str, result: str) -> Expression:
    """Compile ``source``, which must give a ``result`` ("bool" or "string") or a dynamic value.

    Raises CelError with the compiler's message (position and caret) when it does not.
    """
    wanted = cel.Type.BOOL if result == "bool" else cel.Type.STRING
    try:
        compiled = _environment().compile(source)
    except RuntimeError as error:
        raise CelError(_compiler_message(str(error))) from None
    returned = compiled.return_type()
    if returned not in (wanted, cel.Type.DYN):
        raise CelError(f"it gives a {returned.name().lower()}, a {result} is expected")
    return Expression(source, compiled)


def _compiler_message(text: str) -> str:
    """The compiler's error without its status-code prefix and suffix."""
    text = text.removeprefix("INVALID_ARGUMENT: ").replace(" [INVALID_ARGUMENT]", "")
    return text.replace("ERROR: <input>:", "at ").strip()


class Activation:
    """The variables for one object, built once and shared by every expression on it."""

    def __init__(self, live: Mapping[str, Any], conditions: Mapping[str, Any]) -> None:
        self.native = _environment().Activation({"object": live, "conditions": conditions})
