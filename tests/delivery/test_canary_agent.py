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

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.agent.conftest import apply_yaml, source_and_app, wait_for
from tests.analysis.prom import Prometheus
from tests.conftest import Cli, GitRepo, Kubectl
from tests.delivery.agentkit import ROLLOUT_TIMEOUT, TARGET, rollout, waited
from tests.delivery.signals import MetricsApp, error_ratio, new_version
from tests.notify.receivers import Recorder
from tether.devcluster.controlplane import DevCluster


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


def delivery(version_arg: str, steps: str, on_failure: str = "rollback", deadline: str = "") -> str:
    """``spec.delivery`` of a canary of ``web``; ``deadline`` sets its ``progressDeadline``."""
    deadline_line = f"      progressDeadline: {deadline}\n" if deadline else ""
    return f"""  delivery:
    - target: {{kind: Deployment, name: web}}
      onFailure: {on_failure}
{deadline_line}      canary:
        steps:
{steps.format(version=version_arg)}
"""


STEPS = """          - setWeight: 25
          - analysis: {{templates: [{{templateName: error-rate}}], args: [{{name: version, value: "{version}"}}]}}
          - setWeight: 50
          - pause: {{duration: 2s}}
          - setWeight: 100"""


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


def new_commit(
    repo: GitRepo,
    kubectl: Kubectl,
    namespace: str,
    version: str,
    steps: str,
    **delivery_options: str,
) -> str:
    """``version`` pushed to Git, with the App's analysis pointed at it (``delivery_options``:
    ``on_failure``, ``deadline``); the source re-fetched."""
    repo.write("app/web.yaml", deployment(version))
    commit = repo.commit(version)
    extra = delivery(version, steps, **delivery_options)
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=extra))
    kubectl(
        "annotate",
        "gitsources.tether.dev/repo",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )
    return commit


def test_a_healthy_canary_is_promoted_step_by_step(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    agent = start_agent("agent-a")
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
            still = rollout(kubectl, namespace)  # were the Deployments read within this step?
            same_step = still.get("phase") in ("Progressing", "Paused") and (
                still.get("step") == current["step"]
            )
            if canary and stable and same_step:
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
    exposed = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(
            httpx.get(f"{agent.url}/metrics", timeout=10).text
        )
        for sample in family.samples
    }
    app_label = ("app", f"{namespace}/web")
    promoted = (app_label, ("phase", "Promoted"), ("target", TARGET))
    assert exposed[("tether_rollout_phase", promoted)] == 1.0
    measured = (app_label, ("phase", "Successful"), ("target", TARGET))
    assert exposed[("tether_analysis_measurements_total", measured)] >= 3


def test_a_canary_whose_error_rate_rises_is_aborted_and_stable_keeps_serving(
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
    bad = new_version()
    serving(metrics_app, prometheus, bad, 0.5)
    commit = new_commit(repo, kubectl, namespace, bad, STEPS)

    def aborted() -> bool:
        current = rollout(kubectl, namespace)
        assert current.get("phase") not in ("Promoting", "Promoted") or (
            current["stable"]["revision"] != commit
        ), current
        return current.get("phase") == "Aborted"

    waited(kubectl, namespace, tmp_path, aborted, "the canary to be aborted")
    current = rollout(kubectl, namespace)
    assert current["candidate"]["revision"] == commit and current["weight"] == 0
    assert "error-rate" in current["message"]
    # stable restored: the candidate is gone, the Git name serves v1 at full size
    wait_for(lambda: deploy(kubectl, namespace, "web-canary") is None, 60, "the canary removed")
    wait_for(
        lambda: (deploy(kubectl, namespace, "web") or {})["spec"]["replicas"] == 4,
        60,
        "stable back at full size",
    )
    assert image(deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    db = tmp_path / "audit.db"
    (decision,) = [d for d in audit_rows(db, "decision") if d["decision"] == "aborted"]
    assert decision["revision"] == commit and decision["actor"] == "agent"
    (abort,) = audit_rows(db, "abort")
    assert any("Failed" in line for line in abort["evidence"])
    assert any(m["phase"] == "Failed" for m in audit_rows(db, "measurement"))
    assert "RolloutAborted" in events(kubectl, namespace)
    # handed over to rollback: the last good render back, the commit quarantined
    wait_for(lambda: "RolledBack" in events(kubectl, namespace), 60, "the rollback")
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    quarantined = [e["revision"] for e in app["status"].get("quarantine") or []]
    assert quarantined == [commit]
    condition = next(c for c in app["status"]["conditions"] if c["type"] == "Rollout")
    assert (condition["status"], condition["reason"]) == ("False", "Aborted")
    # another pass at the same commit does not roll the aborted version out again
    decisions = current["decisions"]
    kubectl(
        "annotate",
        "apps.tether.dev/web",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )
    time.sleep(5)
    again = rollout(kubectl, namespace)
    assert (again["phase"], again["decisions"]) == ("Aborted", decisions)
    assert deploy(kubectl, namespace, "web-canary") is None
    # the abort's own writes (stable resized, the candidate deleted) are not drift
    assert "DriftDetected" not in events(kubectl, namespace)


KILL_STEPS = """          - setWeight: 25
          - analysis: {{templates: [{{templateName: error-rate}}], args: [{{name: version, value: "{version}"}}]}}
          - setWeight: 100"""


def leader(kubectl: Kubectl, namespace: str) -> str:
    lease = kubectl.get("lease", "tether-agent", namespace) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_two_replicas_the_leader_killed_mid_analysis_and_the_other_resumes_it(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    agents = {name: start_agent(name) for name in ("agent-a", "agent-b")}
    first_version(repo, kubectl, namespace, prometheus, KILL_STEPS, count=6, interval="2s")
    v2 = new_version()
    serving(metrics_app, prometheus, v2, 0.0)
    commit = new_commit(repo, kubectl, namespace, v2, KILL_STEPS)

    def measured_twice() -> bool:
        analysis = rollout(kubectl, namespace).get("analysis") or {}
        return analysis.get("count", 0) >= 2

    waited(kubectl, namespace, tmp_path, measured_twice, "two measurements")
    killed = leader(kubectl, namespace)
    agents[killed].kill()
    before = rollout(kubectl, namespace)
    assert before["phase"] == "Progressing" and before["step"] == 1
    assert deploy(kubectl, namespace, "web-canary")["spec"]["replicas"] == 1
    counts: list[int] = []

    def promoted() -> bool:
        current = rollout(kubectl, namespace)
        analysis = current.get("analysis") or {}
        if current.get("phase") == "Progressing" and analysis.get("step") == 1:
            counts.append(analysis["count"])
        assert current.get("phase") not in ("Aborted", "Inconclusive"), current
        return current.get("phase") == "Promoted" and current["stable"]["revision"] == commit

    waited(kubectl, namespace, tmp_path, promoted, "the other replica to finish the rollout")
    assert leader(kubectl, namespace) not in ("", killed)
    # the analysis went on from the measurements taken before the crash, never from zero
    assert counts and min(counts) >= before["analysis"]["count"]
    decisions = audit_rows(tmp_path / "audit.db", "decision")
    started = [d for d in decisions if d["decision"] == "started" and d["revision"] == commit]
    assert len(started) == 1, decisions
    successful = [m for m in audit_rows(tmp_path / "audit.db", "measurement")]
    # status is written before the audit row: a kill between the two loses that one row, and
    # never makes the analysis measure twice
    assert 5 <= len(successful) <= 6
    assert any(d["decision"] == "promoted" for d in decisions)


def test_on_failure_freeze_holds_the_canary_until_a_person_aborts_or_retries(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
    cli: Cli,
) -> None:
    start_agent("agent-a")
    v1 = first_version(repo, kubectl, namespace, prometheus, STEPS)
    bad = new_version()
    serving(metrics_app, prometheus, bad, 0.5)
    frozen_steps = delivery(bad, STEPS, on_failure="freeze")
    repo.write("app/web.yaml", deployment(bad))
    commit = repo.commit(bad)
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=frozen_steps))
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
        lambda: rollout(kubectl, namespace).get("phase") == "Frozen",
        "the rollout to freeze",
    )
    # nothing rolled back: the candidate keeps its share, stable keeps v1 at its share
    time.sleep(3)
    assert deploy(kubectl, namespace, "web-canary")["spec"]["replicas"] == 1
    web = deploy(kubectl, namespace, "web")
    assert (web["spec"]["replicas"], image(web)) == (3, f"registry.example/web:{v1}")
    kube = f"--kubeconfig={kubectl.kubeconfig}"
    code, out, _ = cli("rollout", "status", "web", "-n", namespace, kube)
    assert code == 0 and "Frozen" in out and "error-rate" in out
    code, out, _ = cli("get", "app", "web", "-n", namespace, kube)
    assert code == 0 and "rollouts" in out and "Frozen" in out
    # a person aborts: recorded as their decision, with their reason
    code, out, err = cli(
        "rollout", "abort", "web", "-n", namespace, "--reason", "error budget gone", kube
    )
    assert code == 0, err
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: rollout(kubectl, namespace).get("phase") == "Aborted",
        "the abort by hand",
    )
    wait_for(lambda: deploy(kubectl, namespace, "web-canary") is None, 60, "the canary removed")
    decisions = audit_rows(tmp_path / "audit.db", "decision")
    by_hand = next(d for d in decisions if d["decision"] == "aborted")
    assert by_hand["actor"] not in ("", "agent", "unknown user")
    assert "error budget gone" in by_hand["reason"] and by_hand["revision"] == commit
    # who decided: the name as claimed, the writer the API server recorded, never "verified"
    assert by_hand["claimedBy"] == by_hand["actor"] and by_hand["verified"] is False
    assert by_hand["writtenWith"].startswith("tether-cli (Update at ")
    assert [d["decision"] for d in decisions].count("frozen") == 1
    # a second abort is refused by the CLI, which says what to do instead and writes nothing
    written = (kubectl.get("apps.tether.dev", "web", namespace) or {})["metadata"]["annotations"]
    code, out, _ = cli("rollout", "abort", "web", "-n", namespace, kube)
    said = " ".join(out.split())  # the console wraps at 80 columns
    assert code == 1 and "already aborted" in said and "`tether rollout retry web`" in said
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    assert app["metadata"]["annotations"] == written
    # retry rolls the same commit out again from step 0, with no annotation tricks
    code, _, err = cli("rollout", "retry", "web", "-n", namespace, kube)
    assert code == 0, err
    waited(
        kubectl,
        namespace,
        tmp_path,
        # "started" is written just before "retried": wait for both
        lambda: "retried" in [d["decision"] for d in audit_rows(tmp_path / "audit.db", "decision")],
        "the retry",
    )
    made = [d["decision"] for d in audit_rows(tmp_path / "audit.db", "decision")]
    assert made.count("started") == 2 and made.count("retried") == 1, made


GATED_STEPS = """          - setWeight: 25
          - analysis: {{templates: [{{templateName: error-rate}}], args: [{{name: version, value: "{version}"}}]}}
          - webhook: {{url: "GATE", timeout: 5s}}
          - setWeight: 100"""


def test_an_inconclusive_analysis_pauses_and_alerts_then_a_promote_and_the_webhook_gate_go_on(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    prometheus: Prometheus,
    tmp_path: Path,
    cli: Cli,
) -> None:
    gate, alerts = Recorder().start(), Recorder().start()
    try:
        steps = GATED_STEPS.replace("GATE", f"{gate.url}/check")
        apply_yaml(
            kubectl,
            f"""apiVersion: tether.dev/v1alpha1
kind: AlertProvider
metadata: {{name: hook, namespace: {namespace}}}
spec: {{type: webhook, url: "{alerts.url}", events: [RolloutInconclusive, RolloutPromoted]}}
""",
        )
        start_agent("agent-a")
        first_version(repo, kubectl, namespace, prometheus, steps)
        silent = new_version()  # no traffic at all: the query matches no series
        commit = new_commit(repo, kubectl, namespace, silent, steps)
        waited(
            kubectl,
            namespace,
            tmp_path,
            lambda: rollout(kubectl, namespace).get("phase") == "Inconclusive",
            "the analysis to be inconclusive",
        )
        # it never passes by itself: still paused a while later, the gate never asked
        time.sleep(4)
        assert rollout(kubectl, namespace)["phase"] == "Inconclusive"
        assert gate.received == []
        wait_for(lambda: _alerted(alerts, "RolloutInconclusive"), 60, "the inconclusive alert")
        kube = f"--kubeconfig={kubectl.kubeconfig}"
        code, _, err = cli(
            "rollout", "promote", "web", "-n", namespace, "--reason", "no traffic yet", kube
        )
        assert code == 0, err
        waited(
            kubectl,
            namespace,
            tmp_path,
            lambda: rollout(kubectl, namespace).get("phase") == "Promoted",
            "the promotion",
        )
        (asked,) = gate.received
        assert json.loads(asked.body)["revision"] == commit
        assert json.loads(asked.body)["target"] == TARGET
        wait_for(lambda: _alerted(alerts, "RolloutPromoted"), 60, "the promoted alert")
        decisions = audit_rows(tmp_path / "audit.db", "decision")
        by_hand = next(
            d for d in decisions if d["decision"] == "promoted" and d["actor"] != "agent"
        )
        assert "no traffic yet" in by_hand["reason"] and by_hand["revision"] == commit
        assert any(d["decision"] == "passed" and "webhook" in d["reason"] for d in decisions), (
            decisions
        )
    finally:
        gate.stop()
        alerts.stop()


def _alerted(recorder: Recorder, event: str) -> bool:
    return any(json.loads(r.body).get("event") == event for r in recorder.received)


PAUSED_STEPS = """          - setWeight: 25
          - pause: {{}}
          - setWeight: 100"""


def test_a_paused_rollout_survives_a_frozen_api_server_where_it_was(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    prometheus: Prometheus,
    tmp_path: Path,
    cli: Cli,
    dev_cluster: DevCluster,
) -> None:
    start_agent("agent-a")
    v1 = first_version(repo, kubectl, namespace, prometheus, PAUSED_STEPS)
    v2 = new_version()
    commit = new_commit(repo, kubectl, namespace, v2, PAUSED_STEPS)
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: rollout(kubectl, namespace).get("phase") == "Paused",
        "the rollout to pause",
    )
    before = rollout(kubectl, namespace)
    dev_cluster.pause_apiserver()
    try:
        time.sleep(8)  # past the lease: the agent stops leading, then leads again
    finally:
        dev_cluster.resume_apiserver()
    time.sleep(6)
    after = rollout(kubectl, namespace)
    assert (after["phase"], after["step"], after["weight"]) == ("Paused", 1, 25)
    assert after["decisions"] == before["decisions"]  # nothing started over
    assert deploy(kubectl, namespace, "web-canary")["spec"]["replicas"] == 1
    assert image(deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    kube = f"--kubeconfig={kubectl.kubeconfig}"
    code, _, err = cli("rollout", "promote", "web", "-n", namespace, kube)
    assert code == 0, err
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Promoted"
            and rollout(kubectl, namespace)["stable"]["revision"] == commit
        ),
        "the promotion",
    )
    assert image(deploy(kubectl, namespace, "web")) == f"registry.example/web:{v2}"
