"""CEL for health checks: the variables a health expression sees, over the shared CEL wrapper.

An expression sees two variables:

    object       the live object as the API server returns it
    conditions   its ``status.conditions`` by type: ``conditions.Ready.status == "True"``

Compiling, type-checking and evaluating are ``tether.core.cel``'s (one wrapper of the CEL library
for health checks and analysis conditions); docs/decisions/0010-cel-for-health-checks.md says
why CEL and which library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.core import cel as core_cel
from tether.core.cel import CelError, Expression

VARIABLES = ("object", "conditions")
ENVIRONMENT = core_cel.CelEnvironment(VARIABLES)

__all__ = ["VARIABLES", "Activation", "CelError", "Expression", "compile_expression"]


def compile_expression(source: str, result: str) -> Expression:
    """Compile ``source``, which must give a ``result`` ("bool" or "string") or a dynamic value.

    Raises CelError with the compiler's message (position and caret) when it does not.
    """
    return ENVIRONMENT.compile(source, result)


class Activation(core_cel.Activation):
    """The variables for one object, built once and shared by every expression on it."""

    def __init__(self, live: Mapping[str, Any], conditions: Mapping[str, Any]) -> None:
        super().__init__(ENVIRONMENT, {"object": live, "conditions": conditions})
