"""A Deployment under a HorizontalPodAutoscaler (podinfo's shape: no ``replicas`` in Git) rolled
out as a canary by the agent against the real control plane.

There is no metrics server here, so the test scales the Deployment through its scale
subresource itself, as the HPA would. The canary's share is taken from that live count, and the
stable Deployment's ``replicas`` are left to the HPA: Tether's passes do not change it (its
``metadata.generation`` stays put) and report no drift.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from tests.agent.conftest import apply_yaml, source_and_app, wait_for
from tests.conftest import GitRepo, Kubectl
from tests.delivery.agentkit import ROLLOUT_TIMEOUT, rollout, waited
from tests.delivery.signals import new_version

HPA_SCALED = 4


def deployment(version: str) -> str:
    """podinfo's shape: no ``replicas``, an HPA scaling the Deployment."""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, version: {version}}}}}
    spec:
      tolerations: [{{operator: Exists}}]
      containers: [{{name: web, image: "registry.example/web:{version}"}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: Resource
      resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}
"""


DELIVERY = """  delivery:
    - target: {kind: Deployment, name: web}
      canary:
        steps:
          - setWeight: 25
          - pause: {}
"""


def spec_of(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return dict(kubectl.get("deployment", name, namespace) or {})


def paused_at_one(kubectl: Kubectl, namespace: str) -> bool:
    """The rollout paused with its canary at 1 replica (25 % of the 4 the HPA set)."""
    canary = spec_of(kubectl, namespace, "web-canary")
    return (
        rollout(kubectl, namespace).get("phase") == "Paused"
        and (canary.get("spec") or {}).get("replicas") == 1
    )


def passes(agent: Any, namespace: str) -> int:
    """Reconcile passes the agent has finished for App ``web``."""
    metrics = httpx.get(f"{agent.url}/metrics").text
    pattern = rf"tether_reconcile_duration_seconds_count\{{[^}}]*{namespace}/web[^}}]*\}} (\S+)"
    return sum(int(float(count)) for count in re.findall(pattern, metrics))


def request_pass(kubectl: Kubectl, namespace: str) -> None:
    kubectl(
        "annotate",
        "apps.tether.dev/web",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )


def test_an_autoscaled_deployment_splits_the_live_count_and_leaves_replicas_to_the_hpa(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Any
) -> None:
    agent = start_agent("agent-a")
    repo.write("app/web.yaml", deployment(new_version()))
    repo.commit("v1")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=DELIVERY))
    wait_for(
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Promoted"
            and spec_of(kubectl, namespace, "web")
        ),
        ROLLOUT_TIMEOUT,
        "v1 to be deployed",
    )
    # what the HPA does: set the size through the scale subresource
    kubectl("scale", "deployment/web", "-n", namespace, f"--replicas={HPA_SCALED}")

    repo.write("app/web.yaml", deployment(new_version()))
    repo.commit("v2")
    kubectl(
        "annotate",
        "gitsources.tether.dev/repo",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )

    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: paused_at_one(kubectl, namespace),
        "the canary at 25 % of 4",
    )
    stable = spec_of(kubectl, namespace, "web")
    assert stable["spec"]["replicas"] == HPA_SCALED
    generation = stable["metadata"]["generation"]

    for _ in range(3):
        before = passes(agent, namespace)
        request_pass(kubectl, namespace)
        wait_for(lambda: passes(agent, namespace) > before, ROLLOUT_TIMEOUT, "one more pass")  # noqa: B023

    stable = spec_of(kubectl, namespace, "web")
    assert stable["spec"]["replicas"] == HPA_SCALED
    assert stable["metadata"]["generation"] == generation, "Tether rewrote the stable's spec"
    assert spec_of(kubectl, namespace, "web-canary")["spec"]["replicas"] == 1
    assert rollout(kubectl, namespace)["phase"] == "Paused"
    managers = {
        entry["manager"]
        for entry in stable["metadata"].get("managedFields") or []
        if "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})
    }
    assert "tether" not in managers, f"Tether owns spec.replicas of web: {managers}"
