"""The test signals themselves: a bad image's pods stay unready, the metrics move as told and a
real Prometheus sees them, and Gateway API's CRDs are served by the dev cluster."""

from __future__ import annotations

import json
import time

from tests.analysis.prom import Prometheus
from tests.conftest import Kubectl
from tests.delivery.signals import MetricsApp, error_ratio, new_version, unready_image
from tether.devcluster.stages import PodStages


def _deployment(name: str, image: str) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "web", "image": image}]},
                },
            },
        }
    )


def _pods(kubectl: Kubectl, namespace: str, app: str) -> list[dict]:
    out = kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout
    return list(json.loads(out)["items"])


def _ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _wait_running(kubectl: Kubectl, namespace: str, app: str, count: int) -> list[dict]:
    pods: list[dict] = []
    for _ in range(240):
        pods = _pods(kubectl, namespace, app)
        if len(pods) == count and all(p["status"].get("phase") == "Running" for p in pods):
            return pods
        time.sleep(0.25)
    raise AssertionError(f"{app}: never {count} running pods: {pods}")


def test_the_stage_rule_reads_the_last_word_of_the_tag() -> None:
    stages = PodStages()
    assert stages.is_unready("registry.example/web:v2-unready")
    assert stages.is_unready("web:unready")
    assert not stages.is_unready("web:v2")
    assert not stages.is_unready("registry.example:5000/unready")
    assert not PodStages(unready_image_tags=()).is_unready("web:unready")


def test_pods_of_an_unready_tag_run_and_never_become_ready(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=_deployment("good", "web:v1"))
    kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=_deployment("bad", unready_image("web", "v2"))
    )
    kubectl("rollout", "status", "-n", namespace, "deployment/good", "--timeout=120s")
    good = _wait_running(kubectl, namespace, "good", 2)
    bad = _wait_running(kubectl, namespace, "bad", 2)
    assert all(_ready(pod) for pod in good)
    assert not any(_ready(pod) for pod in bad)
    assert all(pod["status"].get("podIP") for pod in bad)
    deployment = kubectl.get("deployment", "bad", namespace)
    assert deployment is not None
    assert deployment["status"].get("readyReplicas", 0) == 0
    # The bad pods still go away when deleted (the delete Stage takes every pod).
    kubectl("delete", "deployment", "bad", "-n", namespace, "--wait=false")
    for _ in range(240):
        if not _pods(kubectl, namespace, "bad"):
            break
        time.sleep(0.25)
    assert _pods(kubectl, namespace, "bad") == []


def test_the_metrics_app_fails_the_share_of_requests_it_is_told(
    metrics_app: MetricsApp, prometheus: Prometheus
) -> None:
    healthy, failing = new_version(), new_version()
    metrics_app.serve(healthy, error_rate=0.0)
    metrics_app.serve(failing, error_rate=0.25)
    prometheus.wait_for(error_ratio(failing, window="5s"), 0.25)
    prometheus.wait_for(error_ratio(healthy, window="5s"), 0.0)
    requests, errors = metrics_app.counts(failing)
    assert requests > 0
    assert errors == requests // 4
    metrics_app.serve(failing, error_rate=0.5)  # a change of rate shows without a backlog
    prometheus.wait_for(error_ratio(failing, window="3s"), 0.5)
    metrics_app.retire(healthy)
    assert metrics_app.counts(healthy) == (0, 0)


def test_gateway_api_routes_are_served(gateway_api: None, kubectl: Kubectl, namespace: str) -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {"rules": [{"backendRefs": [{"name": "web-stable", "port": 80, "weight": 100}]}]},
    }
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(route))
    stored = kubectl.get("httproute", "web", namespace)
    assert stored is not None
    assert stored["spec"]["rules"][0]["backendRefs"][0]["weight"] == 100
    bad = dict(route, metadata={"name": "bad"})
    bad["spec"] = {"rules": [{"backendRefs": [{"name": "x", "port": 80, "weight": -1}]}]}
    refused = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(bad), check=False)
    assert refused.returncode != 0  # the CRD's schema is enforced by the API server
