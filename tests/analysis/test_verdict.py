"""The verdict of a metric is a pure function of its limits and measurements: a table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tether.analysis import Limits, Measurement, Phase, Verdict, assess_metric, combine

OK, NO, UNSURE, ERR = Phase.SUCCESSFUL, Phase.FAILED, Phase.INCONCLUSIVE, Phase.ERROR
AT = datetime(2026, 11, 27, tzinfo=UTC)


def _measurements(*phases: Phase) -> list[Measurement]:
    return [Measurement("m", phase, None, "", AT, AT) for phase in phases]


CASES = [
    # (limits, phases, verdict, words in the reason)
    (Limits(count=1), [], Verdict.RUNNING, "0 measurements taken of 1"),
    (Limits(count=1), [OK], Verdict.SUCCESSFUL, "1 measurement of 1 successful"),
    (Limits(count=1), [NO], Verdict.FAILED, "1 measurement failed, more than failureLimit 0"),
    (Limits(count=3), [OK, OK], Verdict.RUNNING, "2 measurements taken of 3"),
    (Limits(count=3), [OK, OK, OK], Verdict.SUCCESSFUL, "3 measurements of 3 successful"),
    (Limits(count=5, failure_limit=2), [OK, NO, OK, NO], Verdict.RUNNING, "4 measurements taken"),
    (Limits(count=5, failure_limit=2), [OK, NO, NO, NO], Verdict.FAILED, "3 measurements failed"),
    (Limits(count=3, failure_limit=2), [NO, OK, NO], Verdict.SUCCESSFUL, "1 measurement of 3"),
    (Limits(count=2, failure_limit=5), [NO, NO], Verdict.INCONCLUSIVE, "none successful"),
    (Limits(count=10, failure_limit=-1), [NO] * 9, Verdict.RUNNING, "9 measurements taken"),
    (Limits(count=3), [OK, UNSURE], Verdict.INCONCLUSIVE, "more than inconclusiveLimit 0"),
    (
        Limits(count=3, inconclusive_limit=1),
        [OK, UNSURE, OK],
        Verdict.SUCCESSFUL,
        "2 measurements of 3",
    ),
    (
        Limits(count=3, inconclusive_limit=1),
        [UNSURE, UNSURE],
        Verdict.INCONCLUSIVE,
        "2 measurements",
    ),
    (Limits(count=1, inconclusive_limit=1), [UNSURE], Verdict.INCONCLUSIVE, "none successful"),
    # errors: consecutive ones against the limit; they are taken again, not counted
    (Limits(count=1), [ERR, ERR, ERR, ERR], Verdict.RUNNING, "0 measurements taken of 1"),
    (
        Limits(count=1),
        [ERR, ERR, ERR, ERR, ERR],
        Verdict.ERROR,
        "more than consecutiveErrorLimit 4",
    ),
    (
        Limits(count=2, consecutive_error_limit=1),
        [ERR, OK, ERR, OK],
        Verdict.SUCCESSFUL,
        "2 measurements of 2",
    ),
    (Limits(count=3, consecutive_error_limit=1), [OK, ERR, ERR], Verdict.ERROR, "2 measurements"),
    # failure wins over every other limit reached at the same time
    (Limits(count=2), [UNSURE, NO], Verdict.FAILED, "failureLimit"),
    # a background analysis: count None runs until stopped or failed
    (Limits(count=None), [OK] * 50, Verdict.RUNNING, "50 measurements taken until stopped"),
    (
        Limits(count=None, failure_limit=1),
        [OK, NO, OK, NO],
        Verdict.FAILED,
        "2 measurements failed",
    ),
]


@pytest.mark.parametrize(("limits", "phases", "verdict", "reason"), CASES)
def test_verdict(limits: Limits, phases: list[Phase], verdict: Verdict, reason: str):
    assessment = assess_metric(limits, _measurements(*phases))
    assert assessment.verdict is verdict
    assert reason in assessment.reason


def test_the_verdict_does_not_depend_on_anything_but_its_inputs():
    measurements = _measurements(OK, NO, OK)
    limits = Limits(count=3, failure_limit=1)
    assert assess_metric(limits, measurements) == assess_metric(limits, list(measurements))


@pytest.mark.parametrize(
    ("verdicts", "combined"),
    [
        ([], Verdict.SUCCESSFUL),
        ([Verdict.SUCCESSFUL, Verdict.SUCCESSFUL], Verdict.SUCCESSFUL),
        ([Verdict.SUCCESSFUL, Verdict.RUNNING], Verdict.RUNNING),
        ([Verdict.RUNNING, Verdict.INCONCLUSIVE], Verdict.INCONCLUSIVE),
        ([Verdict.INCONCLUSIVE, Verdict.ERROR], Verdict.ERROR),
        ([Verdict.ERROR, Verdict.FAILED, Verdict.SUCCESSFUL], Verdict.FAILED),
    ],
)
def test_an_analysis_takes_the_worst_verdict_of_its_metrics(verdicts, combined):
    assert combine(verdicts) is combined


def test_measurements_round_trip_through_their_records():
    measurement = Measurement("rate", Phase.FAILED, [0.7], "failureCondition held", AT, AT)
    assert Measurement.from_record(measurement.to_record()) == measurement
