"""Fixtures for connection tests: real ServiceAccount tokens from the dev cluster, a real exec
credential plugin script that records every run, kubeconfig writing, an IPv6 loopback path to the
API server, and "who am I" asked of the API server itself (SelfSubjectReview)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Kubectl
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection
from tether.devcluster.controlplane import DevCluster

# The plugin follows plan.json next to it: which token the n-th run prints, how long the
# credential lives, whether to wait for the test's ticker, how to fail. Each run appends one JSON
# line to runs.jsonl (what it was given and what it printed, minus the secret), so tests count
# runs from outside the process that ran it.
PLUGIN = """\
#!{python}
import json, os, pathlib, sys, time
from datetime import datetime, timedelta, timezone

here = pathlib.Path(__file__).resolve().parent
plan = json.loads((here / "plan.json").read_text())
runs = here / "runs.jsonl"
number = len(runs.read_text().splitlines()) if runs.exists() else 0
if plan.get("wait_for_ticks"):
    ticks = here / "ticks"
    for _ in range(400):
        if ticks.exists() and len(ticks.read_text().splitlines()) >= plan["wait_for_ticks"]:
            break
        time.sleep(0.05)
    else:
        sys.exit("the test's ticker never advanced: the event loop is blocked")
def ticks_seen():
    ticks = here / "ticks"
    return len(ticks.read_text().splitlines()) if ticks.exists() else 0
ticks_before_sleep = ticks_seen()
time.sleep(plan.get("sleep", 0))
ticks_after_sleep = ticks_seen()
status = {{}}
tokens = plan.get("tokens") or []
if tokens:
    status["token"] = tokens[min(number, len(tokens) - 1)]
if plan.get("cert"):
    status["clientCertificateData"] = plan["cert"]
    status["clientKeyData"] = plan["key"]
expires = None
if plan.get("expires_in") is not None:
    expires = datetime.now(timezone.utc) + timedelta(seconds=plan["expires_in"])
    status["expirationTimestamp"] = expires.isoformat().replace("+00:00", "Z")
with runs.open("a") as log:
    log.write(json.dumps({{
        "args": sys.argv[1:],
        "env": {{k: v for k, v in os.environ.items() if k.startswith("PLUGIN_")}},
        "exec_info": json.loads(os.environ.get("KUBERNETES_EXEC_INFO", "null")),
        "expires": expires.timestamp() if expires else None,
        "ticks_during_sleep": ticks_after_sleep - ticks_before_sleep,
    }}) + "\\n")
if plan.get("stderr"):
    sys.stderr.write(plan["stderr"])
if plan.get("exit"):
    sys.exit(plan["exit"])
api_version = plan.get("api_version", "client.authentication.k8s.io/v1")
print(plan.get("stdout") or json.dumps(
    {{"apiVersion": api_version, "kind": "ExecCredential", "status": status}}
))
"""


@dataclass
class Plugin:
    """A real exec credential plugin script in its own directory."""

    directory: Path

    @property
    def command(self) -> Path:
        return self.directory / "credential-plugin"

    def plan(self, **plan: Any) -> Plugin:
        (self.directory / "plan.json").write_text(json.dumps(plan))
        return self

    def runs(self) -> list[dict[str, Any]]:
        log = self.directory / "runs.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def tick(self) -> None:
        with (self.directory / "ticks").open("a") as ticks:
            ticks.write("tick\n")


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    directory = tmp_path / "plugin"
    directory.mkdir()
    made = Plugin(directory)
    made.command.write_text(PLUGIN.format(python=sys.executable))
    made.command.chmod(0o755)
    return made.plan(tokens=["unused"])


def service_account_token(kubectl: Kubectl, namespace: str, name: str) -> str:
    """A real token for ServiceAccount ``namespace/name`` (created if needed), via TokenRequest."""
    if kubectl.get("serviceaccount", name, namespace) is None:
        kubectl("create", "serviceaccount", name, "-n", namespace)
    return kubectl("create", "token", name, "-n", namespace, "--duration=1h").stdout.strip()


def cluster_entry(dev_cluster: DevCluster, server: str | None = None) -> dict[str, Any]:
    state = dev_cluster.state()
    assert state is not None
    return {
        "server": server or dev_cluster.server_url(state),
        "certificate-authority": str(dev_cluster.pki.ca_cert),
    }


def write_kubeconfig(
    path: Path,
    *,
    clusters: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    contexts: dict[str, dict[str, Any]] | None = None,
    current: str | None = None,
) -> Path:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in (clusters or {}).items()],
        "users": [{"name": n, "user": u} for n, u in (users or {}).items()],
        "contexts": [{"name": n, "context": c} for n, c in (contexts or {}).items()],
    }
    if current:
        config["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def exec_user(plugin: Plugin, **extra: Any) -> dict[str, Any]:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin.command),
            "interactiveMode": "Never",
            **extra,
        }
    }


async def whoami(client: KubeClient) -> str:
    """The user name the API server authenticated this client's request as."""
    resource = await client.resource("authentication.k8s.io/v1", "SelfSubjectReview")
    review = await client.create(
        resource, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    return str(review["status"]["userInfo"]["username"])


def whoami_once(connection: Connection) -> str:
    async def go() -> str:
        async with KubeClient(connection) as client:
            return await whoami(client)

    return asyncio.run(asyncio.wait_for(go(), 60))


@pytest.fixture(scope="session")
def ipv6_loopback_port(dev_cluster: DevCluster) -> Iterator[int]:
    """A port on [::1] that carries TCP to the API server, which can bind one address only and
    binds 127.0.0.1 (binding :: would expose it beyond loopback). TLS stays end to end: the
    client checks the server certificate's ::1 address itself."""
    state = dev_cluster.state()
    assert state is not None
    target = ("127.0.0.1", state.ports["kube-apiserver"])
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.bind(("::1", 0))
    listener.listen(16)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def relay(incoming: socket.socket) -> None:
        with incoming, socket.create_connection(target) as outgoing:
            back = threading.Thread(target=pump, args=(outgoing, incoming), daemon=True)
            back.start()
            pump(incoming, outgoing)
            back.join()

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                incoming, _ = listener.accept()
                threading.Thread(target=relay, args=(incoming,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield int(listener.getsockname()[1])
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
    listener.close()
