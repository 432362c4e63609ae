"""The Prometheus provider against a real Prometheus scraping a target the tests move."""

from __future__ import annotations

import asyncio

import pytest

from tests.analysis.prom import Prometheus, Target, success_rate
from tests.notify.receivers import free_port
from tether.analysis import (
    Conditions,
    EmptyResult,
    Limits,
    Measurement,
    Metric,
    Phase,
    PrometheusProvider,
    Verdict,
    run_metric,
)


def _metric(
    address: str,
    query: str,
    limits: Limits,
    *,
    success: str | None = "result[0] >= 0.95",
    failure: str | None = None,
    empty: EmptyResult = EmptyResult.INCONCLUSIVE,
    interval: float = 0.5,
) -> Metric:
    return Metric(
        name="success-rate",
        provider=PrometheusProvider(address, query, timeout=5),
        conditions=Conditions.compile(success, failure, empty),
        limits=limits,
        interval=interval,
    )


def test_a_healthy_version_passes_every_measurement(prometheus: Prometheus, target: Target):
    version = target.new_version()
    target.serve(version, requests=200, errors=2)
    prometheus.wait_for(success_rate(version), 0.99)

    metric = _metric(prometheus.url, success_rate(version), Limits(count=3))
    result = asyncio.run(run_metric(metric))

    assert result.assessment.verdict is Verdict.SUCCESSFUL
    assert [m.phase for m in result.measurements] == [Phase.SUCCESSFUL] * 3
    assert result.measurements[0].value == [pytest.approx(0.99)]
    assert "successCondition 'result[0] >= 0.95' held" in result.measurements[0].message


def test_errors_rising_fail_the_analysis_after_failure_limit(
    prometheus: Prometheus, target: Target
):
    version = target.new_version()
    target.serve(version, requests=100)
    prometheus.wait_for(success_rate(version), 1.0)
    seen: list[Measurement] = []

    def errors_rise_after_the_first(measurement: Measurement) -> None:
        seen.append(measurement)
        if len(seen) == 1:
            target.serve(version, requests=100, errors=60)  # success rate 0.7 once scraped

    metric = _metric(prometheus.url, success_rate(version), Limits(count=60, failure_limit=2))
    result = asyncio.run(run_metric(metric, on_measurement=errors_rise_after_the_first))

    phases = [m.phase for m in result.measurements]
    assert result.assessment.verdict is Verdict.FAILED
    assert phases[0] is Phase.SUCCESSFUL
    assert phases.count(Phase.FAILED) == 3  # failureLimit 2: the third failure ends it
    assert phases[-1] is Phase.FAILED
    assert result.measurements[-1].value == [pytest.approx(0.7)]
    assert "more than failureLimit 2" in result.assessment.reason
    assert seen == list(result.measurements)  # every measurement was handed over to record


@pytest.mark.parametrize(
    ("choice", "phase", "verdict"),
    [
        (EmptyResult.SUCCESS, Phase.SUCCESSFUL, Verdict.SUCCESSFUL),
        (EmptyResult.FAILURE, Phase.FAILED, Verdict.FAILED),
        (EmptyResult.INCONCLUSIVE, Phase.INCONCLUSIVE, Verdict.INCONCLUSIVE),
    ],
)
def test_a_query_that_matches_no_series_is_judged_by_the_empty_result_choice(
    prometheus: Prometheus, target: Target, choice, phase, verdict
):
    never_served = target.new_version()
    metric = _metric(prometheus.url, success_rate(never_served), Limits(count=1), empty=choice)

    result = asyncio.run(run_metric(metric))

    assert result.measurements[0].phase is phase
    assert result.measurements[0].value is None
    assert "the query matched no series" in result.measurements[0].message
    assert f"counted as {choice.value}" in result.measurements[0].message
    assert result.assessment.verdict is verdict


def test_a_ratio_over_no_traffic_is_an_empty_result_not_a_failure(
    prometheus: Prometheus, target: Target
):
    version = target.new_version()
    target.serve(version, requests=10)  # then no traffic: the rate over 5 s is 0/0
    idle = f'sum(rate(shop_errors_total{{version="{version}"}}[5s])) / sum(rate(shop_requests_total{{version="{version}"}}[5s]))'
    prometheus.wait_for(f'count(shop_requests_total{{version="{version}"}})', 1)
    prometheus.wait_for(f'count_over_time(shop_requests_total{{version="{version}"}}[5s])', 5)

    metric = _metric(prometheus.url, idle, Limits(count=1), success="result[0] < 0.05")
    result = asyncio.run(run_metric(metric))

    assert result.measurements[0].phase is Phase.INCONCLUSIVE
    assert "NaN" in result.measurements[0].message
    assert result.assessment.verdict is Verdict.INCONCLUSIVE


def test_an_unreachable_prometheus_gives_error_measurements_until_the_limit():
    nowhere = f"http://127.0.0.1:{free_port()}"
    metric = _metric(nowhere, "up", Limits(count=5, consecutive_error_limit=2), interval=0)

    result = asyncio.run(run_metric(metric))

    assert [m.phase for m in result.measurements] == [Phase.ERROR] * 3
    assert result.assessment.verdict is Verdict.ERROR
    assert "more than consecutiveErrorLimit 2" in result.assessment.reason
    assert f"GET {nowhere}/api/v1/query: could not connect" in result.measurements[0].message


def test_a_query_prometheus_refuses_is_an_error_naming_the_server(prometheus: Prometheus):
    metric = _metric(prometheus.url, "sum(", Limits(count=1, consecutive_error_limit=0))

    result = asyncio.run(run_metric(metric))

    assert result.assessment.verdict is Verdict.ERROR
    message = result.measurements[0].message
    assert f"GET {prometheus.url}/api/v1/query: answered 400" in message
    assert "parse error" in message


def test_errors_below_the_limit_are_taken_again_and_do_not_count(
    prometheus: Prometheus, target: Target
):
    """One measurement fails to reach Prometheus, the next ones succeed: count is of values."""
    version = target.new_version()
    target.serve(version, requests=50)
    prometheus.wait_for(success_rate(version), 1.0)

    class FlakyOnce:
        kind = "prometheus"

        def __init__(self) -> None:
            self.calls = 0
            self.real = PrometheusProvider(prometheus.url, success_rate(version), timeout=5)
            self.down = PrometheusProvider(f"http://127.0.0.1:{free_port()}", "up", timeout=5)

        async def measure(self):
            self.calls += 1
            return await (self.down if self.calls == 1 else self.real).measure()

    metric = Metric(
        name="success-rate",
        provider=FlakyOnce(),
        conditions=Conditions.compile("result[0] >= 0.95", None),
        limits=Limits(count=2, consecutive_error_limit=1),
    )
    result = asyncio.run(run_metric(metric))

    assert [m.phase for m in result.measurements] == [
        Phase.ERROR,
        Phase.SUCCESSFUL,
        Phase.SUCCESSFUL,
    ]
    assert result.assessment.verdict is Verdict.SUCCESSFUL
