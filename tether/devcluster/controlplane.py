"""A local Kubernetes control plane made of real processes, for people and for tests.

``DevCluster.up()`` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
(which plays kubelet for fake nodes, so Deployments get Ready pods), all on loopback with TLS,
and writes an admin kubeconfig. kwok runs the pod Stages of ``stages.py``: pods of an image tagged
``…unready`` run and never become Ready (a bad version, for delivery tests). The processes are detached from the caller and recorded in
``state.json`` so ``down`` and ``status`` work from another command. Every component logs to
``logs/<component>.log`` in the cluster directory: look there when a start fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tether.core.paths import cache_root
from tether.devcluster import pki as pki_module
from tether.devcluster.provision import TextLog, ensure_binary
from tether.devcluster.stages import PodStages
from tether.errors import DevClusterError

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
FAKE_NODES = ("kwok-node-0", "kwok-node-1")
_START_TIMEOUT = 120.0


def clusters_root() -> Path:
    return cache_root() / "clusters"


@dataclass
class ClusterState:
    """What ``up`` started: ports and process ids, persisted as ``state.json``."""

    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(ports=dict(data.get("ports", {})), pids=dict(data.get("pids", {})))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"ports": self.ports, "pids": self.pids}, indent=2))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        if status == "Z":
            return False
    return True


class DevCluster:
    """One named local control plane living in ``directory``."""

    def __init__(
        self,
        name: str = "tether",
        directory: Path | None = None,
        pod_stages: PodStages | None = None,
    ) -> None:
        self.name = name
        self.directory = directory or clusters_root() / name
        self.pki = pki_module.Pki(self.directory / "pki")
        self.pod_stages = pod_stages or PodStages()

    @property
    def kubeconfig_path(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def _state_path(self) -> Path:
        return self.directory / "state.json"

    def state(self) -> ClusterState | None:
        return ClusterState.load(self._state_path)

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Each component's process state and whether the API server answers /readyz."""
        state = self.state()
        if state is None:
            return {"name": self.name, "running": False, "components": {}, "ready": False}
        components = {c: _alive(state.pids[c]) if c in state.pids else False for c in COMPONENTS}
        ready = components.get("kube-apiserver", False) and self._api_ready(state)
        return {
            "name": self.name,
            "running": all(components.values()),
            "ready": ready,
            "components": components,
            "kubeconfig": str(self.kubeconfig_path),
            "server": self.server_url(state),
        }

    def server_url(self, state: ClusterState) -> str:
        return f"https://127.0.0.1:{state.ports['kube-apiserver']}"

    def _client(self, state: ClusterState, timeout: float = 5.0) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return httpx.Client(base_url=self.server_url(state), verify=context, timeout=timeout)

    def _api_ready(self, state: ClusterState) -> bool:
        try:
            with self._client(state, timeout=2.0) as client:
                return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    # -- up ----------------------------------------------------------------------------------

    def up(self, log: TextLog | None = None) -> Path:
        """Start the control plane (or reuse it when it already runs) and return the kubeconfig."""
        log = log or TextLog()
        current = self.status()
        if current["running"] and current["ready"]:
            return self.kubeconfig_path
        if self.state() is not None:
            log.say(f"dev cluster {self.name!r} is partly running; restarting it")
            self.down()
        binaries = {c: ensure_binary(c, log) for c in (*COMPONENTS, "kubectl")}
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "logs").mkdir(exist_ok=True)
        pki_module.create(self.pki.directory)
        state = ClusterState(ports={c: _free_port() for c in (*COMPONENTS, "etcd-peer")})
        self._write_kubeconfig(state)
        try:
            self._start_all(binaries, state, log)
        except BaseException:
            self.down()
            raise
        return self.kubeconfig_path

    def _start_all(self, binaries: dict[str, Path], state: ClusterState, log: TextLog) -> None:
        started = time.monotonic()
        self._start(state, "etcd", [str(binaries["etcd"]), *self._etcd_args(state)])
        self._wait(lambda: self._tcp_open(state.ports["etcd"]), "etcd to listen", state)
        self._start(
            state, "kube-apiserver", [str(binaries["kube-apiserver"]), *self._apiserver_args(state)]
        )
        self._wait(lambda: self._api_ready(state), "kube-apiserver to be ready", state)
        for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
            args_of = getattr(
                self, "_" + component.replace("kube-", "").replace("-", "_") + "_args"
            )
            self._start(state, component, [str(binaries[component]), *args_of(state)])
        self._create_fake_nodes(state)
        self._wait(lambda: self._nodes_ready(state), "the kwok nodes to be Ready", state)
        self._wait(
            lambda: self._default_service_account(state), "the default ServiceAccount", state
        )
        log.say(f"dev cluster {self.name!r} up in {time.monotonic() - started:.1f}s")

    def _start(self, state: ClusterState, component: str, argv: list[str]) -> None:
        log_file = (self.directory / "logs" / f"{component}.log").open("ab")
        process = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.directory,
            start_new_session=True,
        )
        log_file.close()
        state.pids[component] = process.pid
        state.save(self._state_path)

    def _wait(self, ready: Callable[[], bool], what: str, state: ClusterState) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            dead = [c for c, pid in state.pids.items() if not _alive(pid)]
            if dead:
                raise DevClusterError(
                    f"dev cluster {self.name!r}: {', '.join(dead)} exited while waiting for {what}; "
                    f"see {self.directory / 'logs'}/{dead[0]}.log:\n{self._log_tail(dead[0])}"
                )
            if ready():
                return
            time.sleep(0.2)
        raise DevClusterError(
            f"dev cluster {self.name!r}: timed out after {_START_TIMEOUT:.0f}s waiting for {what}; "
            f"see the logs in {self.directory / 'logs'}"
        )

    def _log_tail(self, component: str, lines: int = 15) -> str:
        path = self.directory / "logs" / f"{component}.log"
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @staticmethod
    def _tcp_open(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    # -- component flags ---------------------------------------------------------------------

    def _etcd_args(self, state: ClusterState) -> list[str]:
        client = f"http://127.0.0.1:{state.ports['etcd']}"
        peer = f"http://127.0.0.1:{state.ports['etcd-peer']}"
        return [
            f"--data-dir={self.directory / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=8589934592",
            "--log-level=warn",
        ]

    def _apiserver_args(self, state: ClusterState) -> list[str]:
        pki = self.pki
        return [
            f"--etcd-servers=http://127.0.0.1:{state.ports['etcd']}",
            f"--secure-port={state.ports['kube-apiserver']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--cert-dir={self.directory / 'pki'}",
            "--profiling=false",
            "--v=0",
        ]

    def _controller_manager_args(self, state: ClusterState) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig_path}",
            f"--authentication-kubeconfig={self.kubeconfig_path}",
            f"--authorization-kubeconfig={self.kubeconfig_path}",
            "--leader-elect=false",
            f"--root-ca-file={self.pki.ca_cert}",
            f"--service-account-private-key-file={self.pki.service_account_key}",
            "--bind-address=127.0.0.1",
            f"--secure-port={state.ports['kube-controller-manager']}",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
            "--profiling=false",
        ]

    def _scheduler_args(self, state: ClusterState) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig_path}",
            f"--authentication-kubeconfig={self.kubeconfig_path}",
            f"--authorization-kubeconfig={self.kubeconfig_path}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={state.ports['kube-scheduler']}",
            "--profiling=false",
        ]

    def _kwok_args(self, state: ClusterState) -> list[str]:
        stages = self.directory / "kwok-stages.yaml"
        stages.write_text(self.pod_stages.configuration())
        return [
            f"--kubeconfig={self.kubeconfig_path}",
            f"--config={stages}",
            "--manage-all-nodes=true",
            f"--server-address=127.0.0.1:{state.ports['kwok']}",
            "--cidr=10.244.0.0/16",
            "--node-lease-duration-seconds=40",
        ]

    # -- kubeconfig and nodes ----------------------------------------------------------------

    def _write_kubeconfig(self, state: ClusterState) -> None:
        context = f"tether-{self.name}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": context,
                    "cluster": {
                        "server": self.server_url(state),
                        "certificate-authority": str(self.pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": f"{context}-admin",
                    "user": {
                        "client-certificate": str(self.pki.admin_cert),
                        "client-key": str(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": f"{context}-admin"}}
            ],
            "current-context": context,
        }
        self.kubeconfig_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig_path.chmod(0o600)

    def _create_fake_nodes(self, state: ClusterState) -> None:
        with self._client(state) as client:
            for name in FAKE_NODES:
                node = {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {
                            "kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0",
                        },
                        "labels": {
                            "type": "kwok",
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                        },
                    },
                    "status": {
                        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
                        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
                    },
                }
                response = client.post("/api/v1/nodes", json=node)
                if response.status_code not in (201, 409):
                    raise DevClusterError(f"creating fake node {name} failed: {response.text}")

    def _nodes_ready(self, state: ClusterState) -> bool:
        with self._client(state) as client:
            items = client.get("/api/v1/nodes").json().get("items", [])
        ready = {
            item["metadata"]["name"]
            for item in items
            for cond in item.get("status", {}).get("conditions", [])
            if cond.get("type") == "Ready"
            and cond.get("status") == "True"
            and not item.get("spec", {}).get("taints")  # the not-ready taint is gone: pods schedule
        }
        return set(FAKE_NODES) <= ready

    def _default_service_account(self, state: ClusterState) -> bool:
        with self._client(state) as client:
            return (
                client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200
            )

    # -- faults (for tests and game days) ----------------------------------------------------

    def pause_apiserver(self) -> None:
        """Freeze the API server (SIGSTOP): connections stay open and nothing answers, like a
        server stalled by load or a long garbage-collection pause."""
        self._signal_apiserver(signal.SIGSTOP)

    def resume_apiserver(self) -> None:
        self._signal_apiserver(signal.SIGCONT)

    def restart_apiserver(self) -> None:
        """Stop the API server (connections drop) and start it again on the same port."""
        state = self._running_state()
        _stop(state.pids["kube-apiserver"])
        binary = ensure_binary("kube-apiserver")
        self._start(state, "kube-apiserver", [str(binary), *self._apiserver_args(state)])
        self._wait(lambda: self._api_ready(state), "kube-apiserver to be ready again", state)

    def _signal_apiserver(self, signum: signal.Signals) -> None:
        os.killpg(self._running_state().pids["kube-apiserver"], signum)

    def _running_state(self) -> ClusterState:
        state = self.state()
        if state is None or "kube-apiserver" not in state.pids:
            raise DevClusterError(f"dev cluster {self.name!r} is not running")
        return state

    # -- down --------------------------------------------------------------------------------

    def down(self, remove: bool = True) -> None:
        """Stop every component (TERM, then KILL) and remove the cluster's directory."""
        state = self.state()
        if state is not None:
            for component in reversed(COMPONENTS):
                if component in state.pids:
                    _stop(state.pids[component])
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)


def _stop(pid: int, grace: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def running(name: str, directory: Path, log: TextLog | None = None) -> Iterator[DevCluster]:
    """A dev cluster for the duration of a ``with`` block (what the test fixture uses)."""
    cluster = DevCluster(name, directory)
    cluster.up(log)
    try:
        yield cluster
    finally:
        cluster.down()
