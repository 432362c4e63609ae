"""CEL (Common Expression Language): compile once, evaluate many times, no I/O.

One :class:`CelEnvironment` per set of variable names (health checks see ``object`` and
``conditions``, analysis conditions see ``result``). Expressions are type-checked when compiled,
so a misspelt variable, a function that does not exist or ``1 + "a"`` is refused then, with the
position of the mistake. The strings and optional-value extensions are on
(``"x".lowerAscii()``, ``object.?status.?phase``), as in the Kubernetes API server's own CEL.
The library is cel-expr-python, the CEL project's Python binding of its C++ implementation
(docs/decisions/0010-cel-for-health-checks.md); everything that touches it is in this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]  # ships .pyi, no py.typed
from cel_expr_python.ext import ext_optional, ext_strings  # type: ignore[import-untyped]


class CelError(Exception):
    """An expression could not be compiled, or evaluating it failed on the values given."""


@cache
def _environment(variables: tuple[str, ...]) -> cel.Env:
    return cel.NewEnv(
        variables={name: cel.Type.DYN for name in variables},
        extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()],
    )


@dataclass(frozen=True)
class CelEnvironment:
    """The variables expressions may use; each is dynamically typed (plain Python values)."""

    variables: tuple[str, ...]

    def compile(self, source: str, result: str) -> Expression:
        """Compile ``source``, which must give a ``result`` ("bool" or "string") or a dynamic
        value. Raises CelError with the compiler's message (position and caret) when it does
        not."""
        wanted = cel.Type.BOOL if result == "bool" else cel.Type.STRING
        try:
            compiled = _environment(self.variables).compile(source)
        except RuntimeError as error:
            raise CelError(_compiler_message(str(error))) from None
        returned = compiled.return_type()
        if returned not in (wanted, cel.Type.DYN):
            raise CelError(f"it gives a {returned.name().lower()}, a {result} is expected")
        return Expression(source, compiled)


class Activation:
    """The values of an environment's variables, built once and shared by every expression
    evaluated on them."""

    def __init__(self, environment: CelEnvironment, values: Mapping[str, Any]) -> None:
        self.native = _environment(environment.variables).Activation(dict(values))


@dataclass(frozen=True)
class Expression:
    """One compiled expression and its source text (for messages)."""

    source: str
    compiled: cel.Expression

    def evaluate(self, activation: Activation) -> object:
        """The plain Python value of the expression; CelError when it fails (a field the value
        lacks, an index past the end, a type that does not fit)."""
        value = self.compiled.eval(activation.native)
        if value.type() == cel.Type.ERROR:
            raise CelError(str(value.value()))
        return value.plain_value()


def _compiler_message(text: str) -> str:
    """The compiler's error without its status-code prefix and suffix."""
    text = text.removeprefix("INVALID_ARGUMENT: ").replace(" [INVALID_ARGUMENT]", "")
    return text.replace("ERROR: <input>:", "at ").strip()
