"""The dev cluster's opt-in metrics API: metrics-server reads kwok's simulated kubelet resource
metrics, ``kubectl top`` shows a pod's simulated CPU, and a real HPA scales a Deployment up when
that usage rises."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.agent.conftest import wait_for
from tests.conftest import Kubectl
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.metrics import USAGE_CPU_ANNOTATION, MetricsServer
from tether.devcluster.provision import ensure_binary

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {"%(annotation)s": "%(usage)s"}
    spec:
      tolerations: [{operator: Exists}]
      containers:
        - name: web
          image: registry.example/web:v1
          resources: {requests: {cpu: 100m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"""


@pytest.fixture
def metrics_kubectl(metrics_dev_cluster: tuple[DevCluster, MetricsServer]) -> Kubectl:
    cluster, _ = metrics_dev_cluster
    return Kubectl(ensure_binary("kubectl"), cluster.kubeconfig_path)


def _hpa(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return dict(kubectl.get("hpa", "web", namespace) or {})


def _condition(hpa: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in hpa.get("status", {}).get("conditions", []):
        if condition["type"] == kind:
            return dict(condition)
    return {}


def _pods(kubectl: Kubectl, namespace: str) -> list[str]:
    out = kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json").stdout
    return [item["metadata"]["name"] for item in json.loads(out)["items"]]


def test_the_metrics_api_serves_simulated_usage_and_an_hpa_scales_up(
    metrics_kubectl: Kubectl,
) -> None:
    kubectl = metrics_kubectl
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", namespace)
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=DEPLOYMENT % {"annotation": USAGE_CPU_ANNOTATION, "usage": "20m"},
    )

    # 20m of a 100m request: 20 % utilization, under the 50 % target, so one replica stays and
    # the HPA is able to compute (ScalingActive True, not FailedGetResourceMetric).
    wait_for(
        lambda: _condition(_hpa(kubectl, namespace), "ScalingActive").get("status") == "True",
        timeout=180,
        what="the HPA to read the pod's CPU from the metrics API",
    )
    pod = _pods(kubectl, namespace)[0]
    top = kubectl("top", "pod", pod, "-n", namespace, "--no-headers").stdout
    # a rate over two scrapes of kwok's cumulative counter: about, not exactly, the 20m set
    assert 15 <= int(top.split()[1].removesuffix("m")) <= 25, top
    assert _hpa(kubectl, namespace)["status"].get("desiredReplicas") == 1

    # A load arrives: 200m on a 100m request is 200 %, four times the target.
    kubectl(
        "patch",
        "deployment",
        "web",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps(
            {"spec": {"template": {"metadata": {"annotations": {USAGE_CPU_ANNOTATION: "200m"}}}}}
        ),
    )
    scaled = wait_for(
        lambda: (
            (_hpa(kubectl, namespace).get("status", {}).get("desiredReplicas", 0) > 1)
            and _hpa(kubectl, namespace)
        ),
        timeout=240,
        what="the HPA to scale the Deployment up",
    )
    assert scaled["status"]["desiredReplicas"] == 4  # ceil(1 x 200 % / 50 %), the maximum
    wait_for(
        lambda: (kubectl.get("deployment", "web", namespace) or {})["spec"]["replicas"] == 4,
        timeout=60,
        what="the Deployment's replicas to follow the HPA",
    )
