"""The runner: timing through a fake clock (instant), resuming, and stopping sibling metrics."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime, timedelta

from tether.analysis import (
    Conditions,
    Empty,
    Limits,
    Measurement,
    MeasurementError,
    Metric,
    Phase,
    Verdict,
    run_analysis,
    run_metric,
)


class FakeClock:
    """Time moves only when the runner sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.time = datetime(2026, 11, 27, 12, tzinfo=UTC)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += timedelta(seconds=seconds)
        await asyncio.sleep(0)


class Scripted:
    """A provider answering from a script; past its end it repeats the last answer."""

    kind = "scripted"

    def __init__(self, *answers: object) -> None:
        self.answers = deque(answers)
        self.calls = 0

    async def measure(self) -> object:
        self.calls += 1
        answer = self.answers.popleft() if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _metric(provider: Scripted, limits: Limits, name: str = "rate", **timing: float) -> Metric:
    return Metric(
        name=name,
        provider=provider,
        conditions=Conditions.compile("result >= 0.95", None),
        limits=limits,
        **timing,
    )


def test_the_initial_delay_then_the_interval_are_waited_and_timestamps_follow():
    clock = FakeClock()
    metric = _metric(Scripted(0.99), Limits(count=3), interval=30, initial_delay=120)

    result = asyncio.run(run_metric(metric, clock=clock))

    assert clock.sleeps == [120, 30, 30]
    starts = [m.started_at - result.measurements[0].started_at for m in result.measurements]
    assert starts == [timedelta(0), timedelta(seconds=30), timedelta(seconds=60)]
    assert result.assessment.verdict is Verdict.SUCCESSFUL


def test_a_resumed_metric_counts_its_recorded_measurements_and_skips_the_initial_delay():
    clock = FakeClock()
    provider = Scripted(0.99)
    recorded = [
        Measurement.from_record(
            {
                "metric": "rate",
                "phase": "Successful",
                "value": 0.97,
                "message": "",
                "startedAt": "2026-11-27T11:00:00+00:00",
                "finishedAt": "2026-11-27T11:00:01+00:00",
            }
        )
    ] * 2
    metric = _metric(provider, Limits(count=3), interval=30, initial_delay=120)

    result = asyncio.run(run_metric(metric, clock=clock, previous=recorded))

    assert provider.calls == 1
    assert clock.sleeps == [30]
    assert len(result.measurements) == 3
    assert result.assessment.verdict is Verdict.SUCCESSFUL


def test_a_finished_metric_is_not_measured_again_when_resumed():
    provider = Scripted(0.99)
    failed = Measurement("rate", Phase.FAILED, 0.5, "", FakeClock().now(), FakeClock().now())
    result = asyncio.run(run_metric(_metric(provider, Limits(count=3)), previous=[failed]))
    assert provider.calls == 0
    assert result.assessment.verdict is Verdict.FAILED


def test_a_provider_error_is_an_error_measurement_with_its_message():
    provider = Scripted(MeasurementError("GET http://x: could not connect"), 0.99)
    result = asyncio.run(run_metric(_metric(provider, Limits(count=1)), clock=FakeClock()))
    assert [(m.phase, m.message) for m in result.measurements] == [
        (Phase.ERROR, "GET http://x: could not connect"),
        (Phase.SUCCESSFUL, "successCondition 'result >= 0.95' held"),
    ]
    assert result.measurements[0].value is None


def test_an_empty_result_records_no_value_and_pauses_by_default():
    result = asyncio.run(run_metric(_metric(Scripted(Empty("no series")), Limits(count=3))))
    assert result.measurements[0].value is None
    assert result.assessment.verdict is Verdict.INCONCLUSIVE


def test_one_failing_metric_stops_the_others_and_fails_the_analysis():
    clock = FakeClock()
    background = Scripted(0.99)
    seen: list[Measurement] = []
    metrics = [
        _metric(background, Limits(count=None), name="latency", interval=10),
        _metric(
            Scripted(0.99, 0.5, 0.4), Limits(count=5, failure_limit=1), name="rate", interval=10
        ),
    ]

    result = asyncio.run(run_analysis(metrics, clock=clock, on_measurement=seen.append))

    assert result.verdict is Verdict.FAILED
    by_name = {r.metric: r for r in result.metrics}
    assert by_name["rate"].assessment.verdict is Verdict.FAILED
    assert by_name["latency"].assessment.verdict is Verdict.RUNNING
    assert "stopped: another metric ended the analysis" in by_name["latency"].assessment.reason
    assert len(by_name["latency"].measurements) == background.calls  # kept, not lost
    assert len(seen) == sum(len(r.measurements) for r in result.metrics)
    assert result.reasons()[1].startswith("rate: Failed (2 measurements failed")


def test_an_analysis_is_successful_when_every_metric_is():
    metrics = [
        _metric(Scripted(0.99), Limits(count=2), name="a"),
        _metric(Scripted(0.96), Limits(count=1), name="b"),
    ]
    result = asyncio.run(run_analysis(metrics, clock=FakeClock()))
    assert result.verdict is Verdict.SUCCESSFUL
    assert [len(r.measurements) for r in result.metrics] == [2, 1]
