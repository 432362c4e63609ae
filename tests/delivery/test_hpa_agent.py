"""Delivery under a real HorizontalPodAutoscaler: the agent against the dev cluster with a metrics
API (``metrics_dev_cluster``), where the HPA itself, reading kwok's simulated CPU through
metrics-server, sets the Deployment's size.

The module points ``dev_cluster`` (and the session fixtures built on it) at that cluster, so
``start_agent`` and ``namespace`` run there.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.agent.conftest import apply_yaml, install_tether_crds, source_and_app, wait_for
from tests.conftest import GitRepo, Kubectl
from tests.delivery.agentkit import ROLLOUT_TIMEOUT, rollout, waited
from tests.delivery.signals import new_version
from tests.delivery.test_edges_hpa import DELIVERY, passes, paused_at_one, request_pass, spec_of
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.metrics import USAGE_CPU_ANNOTATION, MetricsServer
from tether.devcluster.provision import ensure_binary

HPA_MAX = 4


@pytest.fixture(scope="session")
def dev_cluster(metrics_dev_cluster: tuple[DevCluster, MetricsServer]) -> DevCluster:
    return metrics_dev_cluster[0]


@pytest.fixture(scope="session")
def kubectl(dev_cluster: DevCluster) -> Kubectl:
    return Kubectl(ensure_binary("kubectl"), dev_cluster.kubeconfig_path)


@pytest.fixture(scope="session")
def tether_crds(kubectl: Kubectl) -> None:
    """This module's own: the session's would be the main cluster's, already installed."""
    install_tether_crds(kubectl)


def deployment(version: str, cpu: str) -> str:
    """podinfo's shape (no ``replicas``), with a CPU request and a simulated usage of ``cpu``."""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web, version: {version}}}
      annotations: {{"{USAGE_CPU_ANNOTATION}": "{cpu}"}}
    spec:
      tolerations: [{{operator: Exists}}]
      containers:
        - name: web
          image: "registry.example/web:{version}"
          resources: {{requests: {{cpu: 100m}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: {HPA_MAX}
  metrics:
    - type: Resource
      resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
"""


def _hpa_desired(kubectl: Kubectl, namespace: str) -> int:
    hpa = kubectl.get("hpa", "web", namespace) or {}
    return int((hpa.get("status") or {}).get("desiredReplicas") or 0)


def _app_health(kubectl: Kubectl, namespace: str) -> str:
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    return str((app.get("status") or {}).get("health") or "")


def test_a_canary_under_a_real_hpa_splits_what_the_hpa_set_and_leaves_replicas_to_it(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Any
) -> None:
    agent = start_agent("agent-a")
    repo.write("app/web.yaml", deployment(new_version(), cpu="200m"))  # 200 % of the request
    repo.commit("v1")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=DELIVERY))
    wait_for(
        lambda: rollout(kubectl, namespace).get("phase") == "Promoted",
        ROLLOUT_TIMEOUT,
        "v1 to be deployed",
    )
    # the HPA, reading the simulated CPU through metrics-server, scales web to its maximum
    wait_for(
        lambda: (spec_of(kubectl, namespace, "web").get("spec") or {}).get("replicas") == HPA_MAX,
        240,
        "the HPA to scale web up",
    )
    assert _hpa_desired(kubectl, namespace) == HPA_MAX
    # with a metrics API the HPA computes (ScalingActive=True), so the App reaches Healthy: the
    # finding of decision 0031 (never Healthy without one) does not hold here
    # (health is written at the end of a pass: the first pass saw the HPA before its first metric)
    request_pass(kubectl, namespace)
    wait_for(lambda: _app_health(kubectl, namespace) == "Healthy", 120, "the App to be Healthy")

    repo.write("app/web.yaml", deployment(new_version(), cpu="200m"))
    repo.commit("v2")
    kubectl(
        "annotate",
        "gitsources.tether.dev/repo",
        "-n",
        namespace,
        "--overwrite",
        "tether.dev/reconcile-requested-at=v2",
    )

    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: paused_at_one(kubectl, namespace),
        "the canary at 25 % of 4",
    )
    for _ in range(2):
        before = passes(agent, namespace)
        request_pass(kubectl, namespace)
        wait_for(lambda: passes(agent, namespace) > before, ROLLOUT_TIMEOUT, "one more pass")  # noqa: B023
    stable = spec_of(kubectl, namespace, "web")
    assert stable["spec"]["replicas"] == HPA_MAX
    managers = {
        entry["manager"]
        for entry in stable["metadata"].get("managedFields") or []
        if "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    }
    assert "tether" not in managers, f"Tether owns spec.replicas of web: {managers}"
