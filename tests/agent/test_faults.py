"""Faults around the agent: the API server frozen for longer than the Lease with two replicas
(never two leaders at once, and a webhook sent to the standby is not dropped), the API server
restarted in the middle of a sync, and an alert receiver that hangs while drift is healed."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.agent.conftest import (
    AgentProcess,
    app_ready,
    apply_yaml,
    log_entries,
    source_and_app,
    wait_for,
)
from tests.agent.test_agent import signed
from tests.conftest import GitRepo, Kubectl
from tests.sync.manifests import configmap
from tether.devcluster.controlplane import DevCluster


def leading_intervals(agent: AgentProcess) -> list[tuple[datetime, datetime]]:
    """When this replica acted as leader, from its own log (open intervals end now)."""
    intervals, start = [], None
    for entry in log_entries(agent):
        moment = datetime.fromisoformat(entry["time"])
        if entry.get("msg") == "became leader":
            start = moment
        elif entry.get("msg") == "stopped leading" and start is not None:
            intervals.append((start, moment))
            start = None
    if start is not None:
        intervals.append((start, datetime.now(start.tzinfo)))
    return intervals


def overlaps(a: list[tuple[datetime, datetime]], b: list[tuple[datetime, datetime]]) -> list:
    return [(x, y) for x in a for y in b if x[0] < y[1] and y[0] < x[1]]


def holder(kubectl: Kubectl, namespace: str) -> str:
    lease = kubectl.get("lease", "tether-agent", namespace) or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_two_replicas_never_lead_together_through_a_frozen_api_server(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl, dev_cluster: DevCluster
) -> None:
    repo.write("cm.yaml", configmap("settings", level="info")).commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    first = start_agent("agent-a")
    wait_for(lambda: holder(kubectl, namespace) == "agent-a", 30, "agent-a to lead")
    second = start_agent("agent-b")
    wait_for(lambda: app_ready(kubectl, namespace), 60, "Ready")
    wait_for(lambda: httpx.get(f"{second.url}/readyz").status_code == 200, 30, "standby ready")

    dev_cluster.pause_apiserver()
    try:
        time.sleep(8)  # past the 6 s lease and the 4 s renew deadline (conftest.LEASE_SECONDS)
    finally:
        dev_cluster.resume_apiserver()
    wait_for(lambda: holder(kubectl, namespace) in ("agent-a", "agent-b"), 30, "a leader again")
    stepped_down = [e for e in log_entries(first) if e.get("msg") == "stopped leading"]
    assert stepped_down, "the leader kept acting while it could not renew"

    leader = holder(kubectl, namespace)
    standby = second if leader == "agent-a" else first
    commit = repo.write("cm.yaml", configmap("settings", level="debug")).commit("pushed")
    body = json.dumps({"url": str(repo.root)}).encode()
    answer = httpx.post(f"{standby.url}/hooks/generic", content=body, headers=signed(body))
    assert answer.status_code == 202 and answer.json()["sources"] == [f"{namespace}/repo"]
    wait_for(lambda: app_ready(kubectl, namespace, revision=commit), 30, "the push applied")

    assert not overlaps(leading_intervals(first), leading_intervals(second))
    for agent in (first, second):
        assert agent.process.poll() is None


def test_the_api_server_restarted_mid_sync_converges(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl, dev_cluster: DevCluster
) -> None:
    for i in range(60):
        repo.write(f"cm-{i}.yaml", configmap(f"c{i}", level="info"))
    repo.commit("sixty")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    agent = start_agent()
    wait_for(lambda: app_ready(kubectl, namespace), 60, "Ready")
    for i in range(60):
        repo.write(f"cm-{i}.yaml", configmap(f"c{i}", level="debug"))
    commit = repo.commit("all changed")
    body = json.dumps({"url": str(repo.root)}).encode()
    httpx.post(f"{agent.url}/hooks/generic", content=body, headers=signed(body))
    time.sleep(0.3)  # the sync is under way
    dev_cluster.restart_apiserver()

    wait_for(lambda: app_ready(kubectl, namespace, revision=commit), 120, "converged")
    listed = json.loads(kubectl("get", "configmaps", "-n", namespace, "-o", "json").stdout)
    ours = [i for i in listed["items"] if "tether.dev/app" in i["metadata"].get("labels", {})]
    assert sorted(i["metadata"]["name"] for i in ours) == sorted(f"c{i}" for i in range(60))
    assert {i["data"]["level"] for i in ours} == {"debug"}
    assert agent.process.poll() is None


class HangingReceiver:
    """An alert receiver that accepts connections and never answers."""

    def __init__(self) -> None:
        self.calls = 0
        release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.calls += 1
                release.wait(120)

            def log_message(self, *args: Any) -> None:
                pass

        self.release = release
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def test_a_hanging_alert_receiver_never_delays_healing(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    receiver = HangingReceiver()
    try:
        repo.write("cm.yaml", configmap("settings", level="info")).commit()
        provider = f"""
---
apiVersion: tether.dev/v1alpha1
kind: AlertProvider
metadata: {{name: hook, namespace: {namespace}}}
spec: {{type: webhook, url: "{receiver.url}"}}
"""
        apply_yaml(kubectl, source_and_app(namespace, str(repo.root)) + provider)
        agent = start_agent("agent-a", "--alert-queue-size=2")
        wait_for(lambda: app_ready(kubectl, namespace), 60, "Ready")
        for n in range(6):
            kubectl(
                "patch",
                "configmap",
                "settings",
                "-n",
                namespace,
                "-p",
                json.dumps({"data": {"level": f"edit-{n}"}}),
            )
            wait_for(
                lambda: (
                    kubectl.get("configmap", "settings", namespace)["data"] == {"level": "info"}
                ),
                20,
                f"edit {n} healed while the receiver hangs",
            )
        assert receiver.calls >= 1  # alerts were being sent, to a receiver that never answers
        metrics = httpx.get(f"{agent.url}/metrics").text
        dropped = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("tether_alerts_dropped_total ")
        )
        assert dropped > 0
    finally:
        receiver.close()
