"""Argo Rollouts AnalysisTemplates (a look-alike written for the tests) read, refused where they
leave the common subset, and run against the real Prometheus."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.analysis.prom import Prometheus, Target
from tether.analysis import (
    ArgValue,
    JobProvider,
    PrometheusProvider,
    Verdict,
    WebProvider,
    read_metrics,
    read_template,
    run_analysis,
)
from tether.analysis.template import JobContext
from tether.errors import AnalysisError

TEMPLATE = yaml.safe_load((Path(__file__).parent / "templates" / "success-rate.yaml").read_text())


def test_the_argo_template_is_read_with_its_conditions_translated():
    template = read_template(TEMPLATE)
    metrics = template.instantiate(
        {"service-name": "shop", "version": "v2", "prometheus": "http://127.0.0.1:9090"}
    )

    rate, seen = metrics
    assert rate.name == "success-rate"
    assert isinstance(rate.provider, PrometheusProvider)
    assert rate.provider.address == "http://127.0.0.1:9090"
    assert 'shop_errors_total{version="v2"}' in rate.provider.query
    assert rate.conditions.success is not None
    assert rate.conditions.success.source == "result[0] >= 0.95"
    assert rate.conditions.failure is not None
    assert rate.conditions.failure.source == "dyn(size(result)) > 0 && result[0] < 0.8"
    assert (rate.interval, rate.initial_delay) == (1.0, 0.0)
    assert (rate.limits.count, rate.limits.failure_limit) == (3, 1)
    assert rate.limits.consecutive_error_limit == 4  # Argo's default
    assert seen.conditions.success is not None
    assert seen.conditions.success.source == (
        "!(result[0] != result[0]) && dyn(double(result[0])) > 0"
    )
    assert seen.limits.count == 1


def test_the_argo_template_judges_a_good_and_a_bad_version_on_real_prometheus(
    prometheus: Prometheus, target: Target
):
    good, bad = target.new_version(), target.new_version()
    target.serve(good, requests=1000, errors=10)
    target.serve(bad, requests=1000, errors=400)
    for version, rate in ((good, 0.99), (bad, 0.6)):
        prometheus.wait_for(
            f'1 - sum(shop_errors_total{{version="{version}"}}) / sum(shop_requests_total{{version="{version}"}})',
            rate,
        )
    template = read_template(TEMPLATE)

    def run(version: str):
        args = {"service-name": "shop", "version": version, "prometheus": prometheus.url}
        return asyncio.run(run_analysis(template.instantiate(args)))

    passed, failed = run(good), run(bad)

    assert passed.verdict is Verdict.SUCCESSFUL, passed.reasons()
    assert [len(m.measurements) for m in passed.metrics] == [3, 1]
    assert failed.verdict is Verdict.FAILED
    assert failed.metrics[0].assessment.reason == (
        "2 measurements failed, more than failureLimit 1"
    )
    assert all("failureCondition" in m.message for m in failed.metrics[0].measurements)


def _with_metric(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(TEMPLATE)
    document["spec"]["metrics"][0].update(changes)
    return document


ARGS = {"service-name": "shop", "version": "v2"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            _with_metric(successCondition="all(result, {# >= 0.95})"),
            "AnalysisTemplate success-rate, metric 'success-rate': successCondition "
            "'all(result, {# >= 0.95})' is outside the part of Argo's expression language "
            "Tether translates (the function all() is not translated); write it in CEL in a "
            "tether.dev/v1alpha1 AnalysisTemplate, for example 'result[0] >= 0.95'",
        ),
        (
            _with_metric(provider={"datadog": {"query": "x"}}),
            "metric 'success-rate': provider datadog: Tether measures with exactly one of "
            "prometheus, web or job",
        ),
        (
            _with_metric(dryRun=True),
            "metric 'success-rate': the metric has fields Tether does not read: dryRun",
        ),
        (
            _with_metric(interval="five minutes"),
            "metric 'success-rate': interval 'five minutes' is not a duration: write 30s, 5m",
        ),
        (
            _with_metric(count="{{args.count}}"),
            "metric 'success-rate': count uses {{args.count}}, which spec.args does not declare",
        ),
        (
            _with_metric(emptyResult="pass"),
            "emptyResult 'pass': use success, failure or inconclusive",
        ),
        (
            _with_metric(provider={"web": {"url": "http://x", "body": "{}"}}),
            "provider.web has a body: use POST or PUT to send it",
        ),
        (
            _with_metric(provider={"web": {"url": "http://x", "jsonPath": "$..ok"}}),
            "provider.web.jsonPath: JSON path '$..ok'",
        ),
        (
            _with_metric(
                provider={"prometheus": {"address": "x", "query": "up", "insecure": True}}
            ),
            "provider.prometheus has fields Tether does not read: insecure",
        ),
        (  # as in argo-rollouts' e2e template web-background: the refusal says what to do
            _with_metric(provider={"web": {"url": "https://x", "insecure": True}}),
            "insecure: TLS verification cannot be switched off: give the server a certificate",
        ),
        (
            _with_metric(provider={"job": {"spec": {}}}),
            "a job metric needs a cluster to run its Job on, and none was given",
        ),
        (
            {**TEMPLATE, "apiVersion": "v1"},
            "apiVersion 'v1' is neither argoproj.io/v1alpha1",
        ),
        (
            {**TEMPLATE, "spec": {**TEMPLATE["spec"], "dryRun": [{"metricName": "x"}]}},
            "AnalysisTemplate success-rate: spec has fields Tether does not read: dryRun",
        ),
    ],
)
def test_templates_outside_the_subset_are_refused_naming_the_metric(document, message):
    with pytest.raises(AnalysisError) as raised:
        read_template(document).instantiate(ARGS)
    assert message in str(raised.value)


def test_check_refuses_a_bad_template_before_any_argument_is_known():
    read_template(TEMPLATE).check()  # the look-alike is fine
    with pytest.raises(AnalysisError, match="metric 'success-rate': successCondition"):
        read_template(_with_metric(successCondition="result[0] >=")).check()
    with pytest.raises(AnalysisError, match="initialDelay '2 days' is not a duration"):
        read_template(_with_metric(initialDelay="2 days")).check()


@pytest.mark.parametrize(
    ("interval", "seconds"), [("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), (15, 15.0)]
)
def test_durations_are_read_as_go_writes_them(interval, seconds):
    metric = read_template(_with_metric(interval=interval)).instantiate(ARGS)[0]
    assert metric.interval == seconds


def test_missing_and_unknown_arguments_are_refused():
    template = read_template(TEMPLATE)
    with pytest.raises(AnalysisError, match="argument 'version' is needed and has no default"):
        template.instantiate({"service-name": "shop"})
    with pytest.raises(AnalysisError, match=r"arguments \['colour'\] are not declared"):
        template.instantiate({**ARGS, "colour": "blue"})


def test_a_secret_argument_may_not_be_written_into_a_condition():
    document = copy.deepcopy(TEMPLATE)
    document["spec"]["args"].append(
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}
    )
    document["spec"]["metrics"][0]["successCondition"] = "result[0] >= {{args.token}}"
    template = read_template(document)
    with pytest.raises(AnalysisError, match="argument 'token' is needed from Secret api key token"):
        template.instantiate(ARGS)
    with pytest.raises(AnalysisError) as raised:
        template.instantiate({**ARGS, "token": ArgValue("0.5", secret=True)})
    assert "successCondition uses the secret argument 'token'" in str(raised.value)
    assert "0.5" not in str(raised.value)


def test_tether_templates_take_cel_as_written_and_refuse_what_does_not_compile():
    document = {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "latency"},
        "spec": {
            "metrics": [
                {
                    "name": "p99",
                    "successCondition": "result.all(x, x < 0.5)",
                    "provider": {"web": {"url": "http://127.0.0.1:1/p99", "jsonPath": "$.p99"}},
                }
            ]
        },
    }
    metric = read_template(document).instantiate()[0]
    assert isinstance(metric.provider, WebProvider)
    assert metric.conditions.success is not None
    assert metric.conditions.success.source == "result.all(x, x < 0.5)"

    document["spec"]["metrics"][0]["successCondition"] = "len(result) > 0"
    with pytest.raises(AnalysisError) as raised:
        read_template(document).instantiate()
    assert "metric 'p99': successCondition 'len(result) > 0'" in str(raised.value)


def test_inline_metrics_and_a_job_metric_without_conditions_judge_the_exit_code():
    class NoCluster:
        async def create_job(self, job): ...
        async def read_job(self, namespace, name): ...
        async def job_pods(self, namespace, name): ...
        async def delete_job(self, namespace, name): ...

    template = read_metrics(
        [{"name": "smoke", "provider": {"job": {"spec": {"template": {"spec": {}}}}}}],
        owner="App shop/web, spec.delivery.analysis",
    )
    metric = template.instantiate(jobs=JobContext(NoCluster(), "shop", "web-7f9c"))[0]
    assert isinstance(metric.provider, JobProvider)
    assert metric.conditions.success is not None
    assert metric.conditions.success.source == "result.exitCode == 0"
    manifest = metric.provider.manifest()
    assert manifest["metadata"]["namespace"] == "shop"
    assert manifest["metadata"]["name"].startswith("web-7f9c-smoke-")
    assert manifest["metadata"]["labels"]["tether.dev/analysis-metric"] == "smoke"
