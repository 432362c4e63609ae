"""Agent fixtures: the CRDs installed once, and the agent run as a real process against the
shared control plane, scoped to the test's namespace (its Apps, GitSources and Lease)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import Kubectl
from tether.agent import crds
from tether.agent.settings import DEFAULT_SERVICE_ACCOUNT
from tether.devcluster.controlplane import DevCluster

WEBHOOK_SECRET = b"test-webhook-secret"
LEASE_SECONDS = 6
"""The agents' Lease: the leader steps down after 4 s without renewing, a standby takes over
after 6 s. Tests that freeze the API server freeze it for longer (8 s)."""
AGENT_START_BOUND = 180.0
"""Seconds an agent process may take to serve ``/healthz`` before the test calls it hung."""


def install_tether_crds(kubectl: Kubectl) -> None:
    """Tether's CRDs applied to ``kubectl``'s cluster and waited for until Established."""
    kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(crds.ALL)
    )
    kubectl(
        "wait",
        "--for=condition=Established",
        *(f"crd/{crd['metadata']['name']}" for crd in crds.ALL),
        "--timeout=60s",
    )


@pytest.fixture(scope="session")
def tether_crds(kubectl: Kubectl) -> None:
    install_tether_crds(kubectl)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class AgentProcess:
    """One ``tether agent`` process; kill() is a crash, stop() a clean shutdown."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        tmp: Path,
        identity: str,
        *extra: str,
        local_sources: bool = True,
    ) -> None:
        self.port = free_port()
        self.identity = identity
        secret = tmp / "webhook-secret"
        secret.write_bytes(WEBHOOK_SECRET)
        self.log = tmp / f"{identity}.log"
        argv = [
            sys.executable,
            "-m",
            "tether.cli.main",
            "agent",
            f"--kubeconfig={kubeconfig}",
            f"--namespace={namespace}",
            f"--lease-namespace={namespace}",
            f"--identity={identity}",
            f"--listen=127.0.0.1:{self.port}",
            f"--webhook-secret-file={secret}",
            # short, so failover tests take over in seconds, yet its 4 s renew deadline outlasts
            # the stalls of a machine running two other test workers (a 3 s Lease did not)
            f"--lease-duration={LEASE_SECONDS}",
            # the tests' GitSources are local repositories (tests/security refuse them without)
            *(["--allow-local-sources"] if local_sources else []),
            *extra,
        ]
        env = {**os.environ, "TETHER_DB": str(tmp / "audit.db")}
        self.process = subprocess.Popen(
            argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env
        )
        try:
            # Until it serves or exits (healthy() raises then): under a loaded machine Python's
            # start alone can take tens of seconds. The bound only catches an agent that hangs.
            wait_for(self.healthy, AGENT_START_BOUND, f"agent {identity} to serve /healthz")
        except BaseException:
            self.stop()  # a fixture that never returned is never torn down: stop it here
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"agent exited:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def provision_deployer(kubectl: Kubectl, namespace: str) -> None:
    """The team's identity the agent applies Apps without a Project as: ServiceAccount
    ``tether-deployer`` with every right in ``namespace`` and none elsewhere."""
    kubectl("create", "serviceaccount", DEFAULT_SERVICE_ACCOUNT, "-n", namespace)
    kubectl(
        "create",
        "rolebinding",
        DEFAULT_SERVICE_ACCOUNT,
        "-n",
        namespace,
        "--clusterrole=cluster-admin",
        f"--serviceaccount={namespace}:{DEFAULT_SERVICE_ACCOUNT}",
    )


def platform_project(kubectl: Kubectl, namespace: str, name: str = "platform") -> str:
    """A Project for Apps that deploy cluster-wide (CRDs, ClusterRoles, other namespaces), as a
    ServiceAccount bound to cluster-admin: ``  project: NAME`` for an App's spec."""
    account = f"{name}-deployer"
    kubectl("create", "serviceaccount", account, "-n", namespace)
    kubectl(
        "create",
        "clusterrolebinding",
        f"{namespace}-{account}",
        "--clusterrole=cluster-admin",
        f"--serviceaccount={namespace}:{account}",
    )
    apply_yaml(
        kubectl,
        f"""apiVersion: tether.dev/v1alpha1
kind: Project
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{destinations: ["*"], clusterScoped: true, serviceAccountName: {account}}}
""",
    )
    return f"  project: {name}\n"


@pytest.fixture
def start_agent(
    dev_cluster: DevCluster, tether_crds: None, namespace: str, tmp_path: Path, kubectl: Kubectl
) -> Iterator[Callable[[str], AgentProcess]]:
    started: list[AgentProcess] = []
    provision_deployer(kubectl, namespace)

    def start(identity: str = "agent-a", *extra: str) -> AgentProcess:
        agent = AgentProcess(dev_cluster.kubeconfig_path, namespace, tmp_path, identity, *extra)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def apply_yaml(kubectl: Kubectl, text: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", "-f", "-", stdin=text, check=check)


def app_condition(kubectl: Kubectl, namespace: str, name: str, kind: str) -> dict[str, Any] | None:
    app = kubectl.get("apps.tether.dev", name, namespace) or {}
    return next(
        (c for c in (app.get("status") or {}).get("conditions") or [] if c["type"] == kind), None
    )


def source_and_app(
    namespace: str, url: str, path: str = ".", self_heal: bool = True, extra: str = ""
) -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: repo, namespace: {namespace}}}
spec: {{url: {json.dumps(url)}, interval: 1h}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{name: repo}}
  path: {path}
  syncPolicy: {{prune: true, selfHeal: {str(self_heal).lower()}, interval: 1h}}
  healthTimeout: 30s
{extra}"""


def log_entries(agent: AgentProcess) -> list[dict[str, Any]]:
    """The agent's JSON log lines (anything else it printed is skipped)."""
    entries = []
    for line in agent.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
    return entries


def app_ready(kubectl: Kubectl, namespace: str, name: str = "web", revision: str = "") -> bool:
    app = kubectl.get("apps.tether.dev", name, namespace) or {}
    status = app.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
    applied = status.get("lastAppliedRevision", "")
    return ready.get("status") == "True" and (not revision or applied == revision)
