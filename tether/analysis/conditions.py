"""Success and failure conditions: CEL expressions over ``result``, and how they judge a value.

    success only     Successful when it holds, Failed when it does not
    failure only     Failed when it holds, Successful when it does not
    both             Failed when failure holds, else Successful when success holds,
                     else Inconclusive
    a value neither can be evaluated on (an index past the end, a missing field)
                     Error, with the expression and CEL's message

An empty result (see ``measurement.Empty``) is never given to the expressions: it is judged by
the metric's ``emptyResult`` choice. Compiling uses ``tether.core.cel``, the one wrapper of the CEL
library (docs/decisions/0010-cel-for-health-checks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.analysis.measurement import DEFAULT_EMPTY_RESULT, Empty, EmptyResult, Phase
from tether.core.cel import Activation, CelEnvironment, CelError, Expression

ENVIRONMENT = CelEnvironment(("result",))

_EMPTY_PHASE = {
    EmptyResult.SUCCESS: Phase.SUCCESSFUL,
    EmptyResult.FAILURE: Phase.FAILED,
    EmptyResult.INCONCLUSIVE: Phase.INCONCLUSIVE,
}


def compile_condition(source: str) -> Expression:
    """A condition's compiled expression; CelError with the position of a mistake."""
    return ENVIRONMENT.compile(source, "bool")


@dataclass(frozen=True)
class Judgement:
    """The phase a value earns and why."""

    phase: Phase
    message: str


@dataclass(frozen=True)
class Conditions:
    """A metric's conditions; at least one of success and failure is set."""

    success: Expression | None
    failure: Expression | None
    empty: EmptyResult = DEFAULT_EMPTY_RESULT

    @classmethod
    def compile(
        cls,
        success: str | None,
        failure: str | None,
        empty: EmptyResult = DEFAULT_EMPTY_RESULT,
    ) -> Conditions:
        """Compile both conditions (CelError names which one is wrong)."""
        if not success and not failure:
            raise CelError("neither successCondition nor failureCondition is set")
        return cls(
            _compile_named("successCondition", success),
            _compile_named("failureCondition", failure),
            empty,
        )

    def judge(self, value: object) -> Judgement:
        """The phase of one measurement's value."""
        if isinstance(value, Empty):
            return Judgement(
                _EMPTY_PHASE[self.empty],
                f"empty result ({value.reason}), counted as {self.empty.value} (emptyResult)",
            )
        activation = Activation(ENVIRONMENT, {"result": value})
        success, failure = self.success, self.failure
        try:
            if failure is not None:
                if _holds(failure, activation):
                    return Judgement(Phase.FAILED, f"failureCondition {failure.source!r} held")
                if success is None:
                    return Judgement(
                        Phase.SUCCESSFUL, f"failureCondition {failure.source!r} did not hold"
                    )
            if success is not None and _holds(success, activation):
                return Judgement(Phase.SUCCESSFUL, f"successCondition {success.source!r} held")
        except CelError as error:
            return Judgement(Phase.ERROR, str(error))
        if failure is None:
            return Judgement(Phase.FAILED, f"successCondition {_source(success)!r} did not hold")
        return Judgement(
            Phase.INCONCLUSIVE,
            f"neither successCondition {_source(success)!r} nor failureCondition "
            f"{failure.source!r} held",
        )


def _source(expression: Expression | None) -> str:
    return expression.source if expression is not None else ""


def _holds(expression: Expression, activation: Activation) -> bool:
    try:
        outcome = expression.evaluate(activation)
    except CelError as error:
        raise CelError(f"{expression.source!r} could not be evaluated: {error}") from None
    if not isinstance(outcome, bool):
        raise CelError(f"{expression.source!r} gave {outcome!r}, not true or false")
    return outcome


def _compile_named(field: str, source: str | None) -> Expression | None:
    if not source:
        return None
    try:
        return compile_condition(source)
    except CelError as error:
        raise CelError(f"{field} {source!r}: {error}") from None
