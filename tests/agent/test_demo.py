"""``tether demo`` end to end on the real control plane: the agent, started as a process, applies
the first commit and a pushed one, undoes a hand edit, records its Events, rolls back a failing
canary (its revert pull request in a local Gitea) and stops cleanly; and
the demo's waits fail loudly, naming what they waited for."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Kubectl
from tether.cli.demo_agent import BackgroundAgent, DemoError, poll
from tether.devcluster.controlplane import DevCluster


def run_demo(kubeconfig: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "demo",
            f"--kubeconfig={kubeconfig}",
            f"--workdir={workdir}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_demo_shows_the_agent_loop(
    dev_cluster: DevCluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    workdir = tmp_path / "demo"
    result = run_demo(dev_cluster.kubeconfig_path, workdir)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    repository = workdir / "gitops"
    pushed = git(repository, "rev-parse", "HEAD")
    first = git(repository, "rev-parse", "HEAD~1")
    events = ["Synced", "DriftDetected", "DriftCorrected"]  # shown by `tether events`
    assert all(reason in result.stdout for reason in events)
    markers = [
        "tether install",
        f"the agent applied {first[:12]}",
        f"push applied: {pushed[:12]}",
        "hand edit undone in",
        "aborted and rolled back: web serves registry.example/web:v1 again",
        "revert pull request: http://127.0.0.1:",
        "agent stopped cleanly (exit 0)",
        "Demo complete",
    ]
    assert all(marker in result.stdout for marker in markers), [
        m for m in markers if m not in result.stdout
    ]
    position = 0  # each step's marker appears after the previous step's
    for marker in markers:
        found = result.stdout.find(marker, position)
        assert found >= 0, f"the steps came out of order: {marker!r} not after the previous step"
        position = found + len(marker)
    log = workdir / "agent.log"
    assert str(log) in result.stdout

    # What the demo claims, checked independently of its output.
    app = kubectl.get("apps.tether.dev", "guestbook", "tether-demo")
    assert app is not None and app["status"]["lastAppliedRevision"] == pushed
    deployment = kubectl.get("deployment", "guestbook", "guestbook-dev")
    assert deployment is not None and deployment["spec"]["replicas"] == 1
    settings = kubectl.get("configmap", "guestbook-settings", "guestbook-dev")
    assert settings is not None and settings["data"]["LOG_LEVEL"] == "trace"
    reasons = kubectl(
        "get",
        "events",
        "-n",
        "tether-demo",
        "--field-selector=involvedObject.kind=App,involvedObject.name=guestbook",
        "-o=jsonpath={.items[*].reason}",
    ).stdout.split()
    assert {"Synced", "DriftDetected", "DriftCorrected"} <= set(reasons)
    assert "agent stopped" in log.read_text()
    secret = (workdir / "webhook-secret").read_text().strip()
    assert secret not in result.stdout + result.stderr + log.read_text()

    # The failing canary: rolled back, its commit quarantined, the revert's URL printed.
    web = workdir / "web"
    bad, good = git(web, "rev-parse", "HEAD"), git(web, "rev-parse", "HEAD~1")
    status = (kubectl.get("apps.tether.dev", "web", "tether-demo") or {})["status"]
    [entry] = status["quarantine"]
    assert entry["revision"] == bad and entry["stableRevision"] == good
    assert entry["pullRequest"]["url"] in result.stdout
    served = kubectl.get("deployment", "web", "guestbook-dev") or {}
    assert served["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/web:v1"
    token = kubectl(
        "get", "secret", "forge-token", "-n", "tether-demo", "-o=jsonpath={.data.token}"
    ).stdout
    assert base64.b64decode(token).decode() not in result.stdout + result.stderr


def test_a_wait_that_runs_out_says_what_it_waited_for() -> None:
    async def never() -> None:
        return None

    async def last_seen() -> str:
        return "still nothing"

    with pytest.raises(DemoError, match=r"waiting for the moon; still nothing"):
        asyncio.run(poll(never, 0.2, "the moon", explain=last_seen))


def test_an_agent_that_cannot_start_fails_the_wait_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the agent's error names a long tmp_path: unwrapped
    agent = BackgroundAgent(tmp_path / "no-kubeconfig", "demo", tmp_path, "demo")
    with pytest.raises(DemoError, match="the agent exited with code 2; its log: "):
        agent.start()
    assert "no-kubeconfig" in agent.log_tail()
