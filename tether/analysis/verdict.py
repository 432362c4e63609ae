"""Verdicts: a pure function of a metric's limits and its list of measurements, no I/O.

For one metric, checked in this order (the first that applies wins):

    Failed        more Failed measurements than ``failureLimit`` (-1: no limit)
    Inconclusive  more Inconclusive measurements than ``inconclusiveLimit``
    Error         more Error measurements in a row than ``consecutiveErrorLimit``
    Successful    ``count`` measurements taken (errors are not counted: they are taken again)
                  and at least one of them Successful
    Inconclusive  ``count`` taken and none Successful: nothing said the version is good
    Running       otherwise: measure again after ``interval``

Several metrics: the worst verdict wins, in the order Failed > Error > Inconclusive > Running >
Successful; an analysis is Successful only when each of its metrics is. Inconclusive and Error
never pass: delivery pauses on them and alerts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tether.analysis.measurement import Measurement, Phase

DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4


class Verdict(enum.Enum):
    """Where one metric, or a whole analysis, stands."""

    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"

    @property
    def finished(self) -> bool:
        return self is not Verdict.RUNNING


# Worst first: the first of these any metric has is the analysis' verdict.
_SEVERITY = (
    Verdict.FAILED,
    Verdict.ERROR,
    Verdict.INCONCLUSIVE,
    Verdict.RUNNING,
    Verdict.SUCCESSFUL,
)


@dataclass(frozen=True)
class Limits:
    """When a metric stops; ``count`` None measures until stopped (a background analysis)."""

    count: int | None = 1
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT


@dataclass(frozen=True)
class Assessment:
    """A verdict and the sentence that explains it (for status, audit and alerts)."""

    verdict: Verdict
    reason: str


def assess_metric(limits: Limits, measurements: Sequence[Measurement]) -> Assessment:
    """The verdict of one metric from its measurements so far (oldest first)."""
    tally = {phase: 0 for phase in Phase}
    for measurement in measurements:
        tally[measurement.phase] += 1
    failed, inconclusive = tally[Phase.FAILED], tally[Phase.INCONCLUSIVE]
    if limits.failure_limit >= 0 and failed > limits.failure_limit:
        return Assessment(
            Verdict.FAILED,
            f"{_measurements(failed)} failed, more than failureLimit {limits.failure_limit}",
        )
    if limits.inconclusive_limit >= 0 and inconclusive > limits.inconclusive_limit:
        return Assessment(
            Verdict.INCONCLUSIVE,
            f"{_measurements(inconclusive)} inconclusive, more than inconclusiveLimit "
            f"{limits.inconclusive_limit}",
        )
    errors = _trailing_errors(measurements)
    if errors > limits.consecutive_error_limit:
        return Assessment(
            Verdict.ERROR,
            f"{_measurements(errors)} in a row could not be taken, more than "
            f"consecutiveErrorLimit {limits.consecutive_error_limit}: {measurements[-1].message}",
        )
    taken = len(measurements) - tally[Phase.ERROR]
    if limits.count is not None and taken >= limits.count:
        if tally[Phase.SUCCESSFUL] == 0:
            return Assessment(
                Verdict.INCONCLUSIVE,
                f"{_measurements(taken)} taken and none successful",
            )
        return Assessment(
            Verdict.SUCCESSFUL,
            f"{_measurements(tally[Phase.SUCCESSFUL])} of {taken} successful",
        )
    planned = "until stopped" if limits.count is None else f"of {limits.count}"
    return Assessment(Verdict.RUNNING, f"{_measurements(taken)} taken {planned}")


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """The verdict of an analysis from its metrics' verdicts: the worst one."""
    present = set(verdicts)
    if not present:
        return Verdict.SUCCESSFUL
    return next(verdict for verdict in _SEVERITY if verdict in present)


def _trailing_errors(measurements: Sequence[Measurement]) -> int:
    count = 0
    for measurement in reversed(measurements):
        if measurement.phase is not Phase.ERROR:
            break
        count += 1
    return count


def _measurements(number: int) -> str:
    return f"{number} measurement" if number == 1 else f"{number} measurements"
