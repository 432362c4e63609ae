"""Running an analysis: measure each metric at its interval until its verdict is reached.

The only part of ``tether.analysis`` that waits. Each metric waits ``initialDelay``, then takes a
measurement, hands it to ``on_measurement`` (delivery records it in the audit trail and status),
asks ``verdict.assess_metric`` where the metric stands, and sleeps ``interval`` while it is still
Running. The metrics of an analysis run side by side; as soon as one of them ends other than
Successful (Failed, Error, Inconclusive) the others are stopped, since the analysis' verdict can
no longer be Successful.

A measurement that can never be taken as configured (``MeasurementRefused``: the API server
refused to create a Job) is not retried: it stops the analysis and reaches the caller.

An analysis interrupted by a restart resumes from its recorded measurements (``previous``): they
count towards the limits and ``count``, and the initial delay is not waited again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tether.analysis.measurement import Empty, Measurement, Phase
from tether.analysis.metric import Metric
from tether.analysis.provider import MeasurementError, MeasurementRefused
from tether.analysis.verdict import Assessment, Verdict, assess_metric, combine

OnMeasurement = Callable[[Measurement], None]


class Clock(Protocol):
    """Time for the runner: the real one, or a fake that makes timing tests instant."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The wall clock and asyncio's sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class MetricResult:
    """One metric's verdict and every measurement it took (oldest first)."""

    metric: str
    assessment: Assessment
    measurements: tuple[Measurement, ...]


@dataclass(frozen=True)
class AnalysisResult:
    """The verdict of an analysis and its metrics' results, in the order they were given."""

    verdict: Verdict
    metrics: tuple[MetricResult, ...]

    def reasons(self) -> list[str]:
        """One line per metric: ``success-rate: Failed (3 measurements failed, ...)``."""
        return [
            f"{result.metric}: {result.assessment.verdict.value} ({result.assessment.reason})"
            for result in self.metrics
        ]


async def measure(metric: Metric, clock: Clock) -> Measurement:
    """One measurement of ``metric``, judged and masked."""
    started = clock.now()
    try:
        value = await metric.provider.measure()
    except MeasurementRefused as error:
        raise MeasurementRefused(metric.mask.text(f"{metric.name}: {error}")) from None
    except MeasurementError as error:
        phase, message, value = Phase.ERROR, str(error), None
    else:
        judgement = metric.conditions.judge(value)
        phase, message = judgement.phase, judgement.message
        value = None if isinstance(value, Empty) else _plain(value)
    return Measurement(
        metric=metric.name,
        phase=phase,
        value=metric.mask.apply(value),
        message=metric.mask.text(message),
        started_at=started,
        finished_at=clock.now(),
    )


async def run_metric(
    metric: Metric,
    *,
    clock: Clock | None = None,
    previous: Sequence[Measurement] = (),
    on_measurement: OnMeasurement | None = None,
) -> MetricResult:
    """Measure ``metric`` until its verdict is reached (forever while ``count`` is None);
    ``MeasurementRefused`` is raised, not recorded."""
    measurements = list(previous)
    assessment = await _measure_until_finished(
        metric, clock or SystemClock(), measurements, on_measurement
    )
    return MetricResult(metric.name, assessment, tuple(measurements))


async def _measure_until_finished(
    metric: Metric,
    clock: Clock,
    measurements: list[Measurement],
    on_measurement: OnMeasurement | None,
) -> Assessment:
    """Append measurements to ``measurements`` (kept by the caller, even when this is
    cancelled) until the metric's verdict is reached."""
    assessment = assess_metric(metric.limits, measurements)
    if assessment.verdict.finished:
        return assessment
    await clock.sleep(metric.interval if measurements else metric.initial_delay)
    while True:
        measurement = await measure(metric, clock)
        measurements.append(measurement)
        if on_measurement is not None:
            on_measurement(measurement)
        assessment = assess_metric(metric.limits, measurements)
        if assessment.verdict.finished:
            return assessment
        await clock.sleep(metric.interval)


async def run_analysis(
    metrics: Sequence[Metric],
    *,
    clock: Clock | None = None,
    previous: Mapping[str, Sequence[Measurement]] | None = None,
    on_measurement: OnMeasurement | None = None,
) -> AnalysisResult:
    """Run every metric side by side; stop them all once one ends other than Successful.
    A ``MeasurementRefused`` (masked, naming its metric) stops them all and is raised."""
    clock = clock or SystemClock()
    names = [metric.name for metric in metrics]
    if len(set(names)) != len(names):
        raise ValueError(f"metric names must differ within an analysis: {names}")
    taken = {metric.name: list((previous or {}).get(metric.name, ())) for metric in metrics}
    tasks = {
        asyncio.create_task(
            _measure_until_finished(metric, clock, taken[metric.name], on_measurement)
        ): metric.name
        for metric in metrics
    }
    assessments: dict[str, Assessment] = {}
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                assessments[tasks[task]] = task.result()
            if any(a.verdict is not Verdict.SUCCESSFUL for a in assessments.values()):
                break
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    results = tuple(
        MetricResult(
            metric.name,
            assessments.get(metric.name) or _STOPPED,
            tuple(taken[metric.name]),
        )
        for metric in metrics
    )
    return AnalysisResult(combine(r.assessment.verdict for r in results), results)


# A metric stopped because another one ended the analysis.
_STOPPED = Assessment(Verdict.RUNNING, "stopped: another metric ended the analysis")


def _plain(value: object) -> object:
    """A provider's value as plain JSON (it already is; tuples become lists)."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value
