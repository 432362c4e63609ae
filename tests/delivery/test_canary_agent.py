"""Canary rollouts driven by the agent, run as a process against the real control plane, judged
by a real Prometheus scraping the test's metrics app (tests/delivery/signals.py).

The Deployment ``web`` under delivery keeps serving the stable version while ``web-canary``
runs the candidate at the step's share of replicas; the rollout's state lives in the App's
status, so a second agent started after the first is killed resumes it where it was.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.agent.conftest import (  # noqa: F401  (fixtures)
    AgentProcess,
    apply_yaml,
    source_and_app,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.analysis.prom import Prometheus
from tests.conftest import GitRepo, Kubectl
from tests.delivery.signals import MetricsApp, error_ratio, new_version

TARGET = "Deployment/web"
ROLLOUT_TIMEOUT = 240.0


def deployment(version: str, replicas: int = 4) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, version: {version}}}}}
    spec:
      tolerations: [{{operator: Exists}}]
      containers: [{{name: web, image: "registry.example/web:{version}"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80}}]
"""


def error_rate_template(prometheus: Prometheus, count: int = 3, interval: str = "1s") -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: error-rate}}
spec:
  args: [{{name: version}}]
  metrics:
    - name: error-rate
      interval: {interval}
      count: {count}
      successCondition: result[0] < 0.1
      provider:
        prometheus:
          address: {prometheus.url}
          query: '{error_ratio("{{args.version}}", "10s")}'
"""


def delivery(version_arg: str, steps: str, on_failure: str = "rollback") -> str:
    return f"""  delivery:
    - target: {{kind: Deployment, name: web}}
      onFailure: {on_failure}
      canary:
        steps:
{steps.format(version=version_arg)}
"""


STEPS = """          - setWeight: 25
          - analysis: {{templates: [{{templateName: error-rate}}], args: [{{name: version, value: "{version}"}}]}}
          - setWeight: 50
          - pause: {{duration: 2s}}
          - setWeight: 100"""


def rollout(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    return dict(((app.get("status") or {}).get("delivery") or {}).get(TARGET) or {})


def deploy(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    return kubectl.get("deployment", name, namespace)


def image(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def audit_rows(db: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT actor, revision, data FROM tether_delivery_records WHERE kind = ? "
            "ORDER BY at, id",
            (kind,),
        ).fetchall()
    return [{"actor": a, "revision": r, **json.loads(d)} for a, r, d in rows]


def events(kubectl: Kubectl, namespace: str) -> list[str]:
    listed = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    return [item.get("reason", "") for item in listed["items"]]


def first_version(
    repo: GitRepo, kubectl: Kubectl, namespace: str, prometheus: Prometheus, steps: str, **kw: Any
) -> str:
    """v1 in Git, the App applied, the agent's first pass waited for: what serves is v1."""
    v1 = new_version()
    repo.write("app/web.yaml", deployment(v1)).write(
        "app/template.yaml", error_rate_template(prometheus, **kw)
    )
    commit = repo.commit("v1")
    apply_yaml(
        kubectl,
        source_and_app(namespace, str(repo.root), "app", extra=delivery(v1, steps)),
    )
    wait_for(
        lambda: (
            (rollout(kubectl, namespace).get("phase") == "Promoted")
            and (deploy(kubectl, namespace, "web") or {}).get("status", {}).get("availableReplicas")
            == 4
        ),
        ROLLOUT_TIMEOUT,
        "v1 to be deployed",
    )
    assert rollout(kubectl, namespace)["stable"]["revision"] == commit
    return v1


def serving(metrics_app: MetricsApp, prometheus: Prometheus, version: str, rate: float) -> None:
    """``version`` gets traffic at ``rate`` errors, and Prometheus has its ratio to show."""
    metrics_app.serve(version, error_rate=rate)
    wait_for(lambda: prometheus.query(error_ratio(version, "10s")), 60, f"{version} in Prometheus")


def new_commit(repo: GitRepo, kubectl: Kubectl, namespace: str, version: str, steps: str) -> str:
    """``version`` pushed to Git, with the App's analysis pointed at it; the source re-fetched."""
    repo.write("app/web.yaml", deployment(version))
    commit = repo.commit(version)
    apply_yaml(
        kubectl,
        source_and_app(namespace, str(repo.root), "app", extra=delivery(version, steps)),
    )
    kubectl(
        "annotate",
        "gitsources.tether.dev/repo",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )
    return commit


def waited(kubectl: Kubectl, namespace: str, tmp: Path, check: Any, what: str) -> None:
    """``wait_for``, saying where the rollout stood and what the agents logged on a timeout."""
    try:
        wait_for(check, ROLLOUT_TIMEOUT, what)
    except AssertionError as error:
        logs = "".join(p.read_text(errors="replace")[-4000:] for p in tmp.glob("agent-*.log"))
        raise AssertionError(f"{error}\nrollout: {rollout(kubectl, namespace)}\n{logs}") from None


def test_a_healthy_canary_is_promoted_step_by_step(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    start_agent("agent-a")
    v1 = first_version(repo, kubectl, namespace, prometheus, STEPS)
    v2 = new_version()
    serving(metrics_app, prometheus, v2, 0.0)
    commit = new_commit(repo, kubectl, namespace, v2, STEPS)

    seen: list[tuple[int, int]] = []
    split_seen: list[tuple[int, int]] = []

    def promoted() -> bool:
        current = rollout(kubectl, namespace)
        if current.get("phase") in ("Progressing", "Paused"):
            seen.append((current["step"], current["weight"]))
            canary = deploy(kubectl, namespace, "web-canary")
            stable = deploy(kubectl, namespace, "web")
            if canary and stable:
                split_seen.append((stable["spec"]["replicas"], canary["spec"]["replicas"]))
                assert image(stable) == f"registry.example/web:{v1}", "stable keeps serving v1"
        assert current.get("phase") not in ("Aborted", "Inconclusive"), current
        return current.get("phase") == "Promoted" and current["stable"]["revision"] == commit

    waited(kubectl, namespace, tmp_path, promoted, "the canary to be promoted")
    # it went through the steps in order, with the replica split of each weight
    weights = [w for _, w in seen]
    assert 25 in weights and 50 in weights
    assert weights.index(25) < weights.index(50)
    assert (3, 1) in split_seen and (2, 2) in split_seen
    # promoted: the Git name serves v2 at full size and the candidate is gone
    wait_for(lambda: deploy(kubectl, namespace, "web-canary") is None, 60, "the canary removed")
    web = deploy(kubectl, namespace, "web")
    assert image(web) == f"registry.example/web:{v2}" and web["spec"]["replicas"] == 4
    decisions = audit_rows(tmp_path / "audit.db", "decision")
    made = [d["decision"] for d in decisions if d["revision"] == commit]
    assert made[0] == "started" and made[-1] == "promoted" and "passed" in made
    passed = next(d for d in decisions if d["decision"] == "passed")
    assert "error-rate" in passed["reason"] and passed["actor"] == "agent"
    measurements = audit_rows(tmp_path / "audit.db", "measurement")
    assert len([m for m in measurements if m["phase"] == "Successful"]) >= 3
    assert "RolloutPromoted" in events(kubectl, namespace)
    condition = next(
        c
        for c in (kubectl.get("apps.tether.dev", "web", namespace) or {})["status"]["conditions"]
        if c["type"] == "Rollout"
    )
    assert (condition["status"], condition["reason"]) == ("True", "Promoted")
