"""Running Flux's source-controller and kustomize-controller as processes on loopback, against a
local control plane, for the benchmarks that compare with Flux.

Binaries and CRDs come from ``bench/flux/build.sh`` (built from the Go modules once, cached under
Tether's cache). Each controller runs with its own identity (``bench.identity``) so its API
requests are counted on their own, leader election off, metrics and health on free loopback
ports, and default concurrency (source-controller 2, kustomize-controller 4: the same order as
the agent's ``--max-concurrent 4``). source-controller serves its artifacts on a loopback port
that it also advertises, which is where kustomize-controller downloads them from.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SOURCE_API = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
BUILD_SCRIPT = Path(__file__).with_name("build.sh")


@dataclass(frozen=True)
class FluxBuild:
    source_controller: Path
    kustomize_controller: Path

    @property
    def crd_files(self) -> list[Path]:
        return sorted(
            [
                *(self.source_controller.parent / "crds").glob("*.yaml"),
                *(self.kustomize_controller.parent / "crds").glob("*.yaml"),
            ]
        )


class FluxBuildFailed(RuntimeError):
    """``build.sh`` failed: the message carries the tail of its output."""


def build() -> FluxBuild:
    """Both binaries, building them first if they are not cached (minutes, once per machine)."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise FluxBuildFailed(f"bench/flux/build.sh failed ({result.returncode}):\n{tail}")
    paths = [Path(line) for line in result.stdout.split()]
    return FluxBuild(source_controller=paths[0], kustomize_controller=paths[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_crds(kubectl: str, kubeconfig: Path, flux: FluxBuild) -> None:
    base = [kubectl, f"--kubeconfig={kubeconfig}"]
    for crd in flux.crd_files:
        subprocess.run(
            [*base, "apply", "--server-side", "--force-conflicts", "-f", str(crd)],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [
            *base,
            "wait",
            "--for=condition=Established",
            "crd/gitrepositories.source.toolkit.fluxcd.io",
            "crd/kustomizations.kustomize.toolkit.fluxcd.io",
        ],
        check=True,
        capture_output=True,
    )


class FluxControllers:
    """The two controllers as child processes; ``stop`` ends exactly these two."""

    def __init__(
        self,
        flux: FluxBuild,
        workdir: Path,
        namespace: str,
        source_kubeconfig: Path,
        kustomize_kubeconfig: Path,
    ) -> None:
        self.flux = flux
        self.workdir = workdir
        self.namespace = namespace
        self.kubeconfigs = (source_kubeconfig, kustomize_kubeconfig)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.metrics_ports: list[int] = []  # source-controller's, kustomize-controller's

    def start(self) -> None:
        (self.workdir / "storage").mkdir(parents=True, exist_ok=True)
        storage = free_port()
        source_args = [
            f"--storage-path={self.workdir / 'storage'}",
            f"--storage-addr=127.0.0.1:{storage}",
            f"--storage-adv-addr=127.0.0.1:{storage}",
        ]
        self.processes = [
            self._start(self.flux.source_controller, self.kubeconfigs[0], source_args),
            self._start(self.flux.kustomize_controller, self.kubeconfigs[1], []),
        ]
        time.sleep(1)
        binaries = (self.flux.source_controller, self.flux.kustomize_controller)
        for process, binary in zip(self.processes, binaries, strict=True):
            if process.poll() is not None:
                log = (self.workdir / f"{binary.name}.log").read_text()
                self.stop()
                raise RuntimeError(f"{binary.name} exited at start:\n{log[-3000:]}")

    def _start(self, binary: Path, kubeconfig: Path, extra: list[str]) -> subprocess.Popen[bytes]:
        metrics = free_port()
        self.metrics_ports.append(metrics)
        argv = [
            str(binary),
            f"--metrics-addr=127.0.0.1:{metrics}",
            f"--health-addr=127.0.0.1:{free_port()}",
            "--enable-leader-election=false",
            "--watch-all-namespaces=false",
            "--log-level=error",
            *extra,
        ]
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "RUNTIME_NAMESPACE": self.namespace,
        }
        log = (self.workdir / f"{binary.name}.log").open("wb")
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def git_repository(namespace: str, url: str, interval: str) -> dict[str, Any]:
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": "repo", "namespace": namespace},
        "spec": {"url": url, "interval": interval, "ref": {"branch": "main"}},
    }


def kustomization(namespace: str, name: str, path: str, interval: str) -> dict[str, Any]:
    """A Kustomization like the agent's App: prune, no health wait, objects into ``namespace``."""
    return {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "interval": interval,
            "path": f"./{path}",
            "prune": True,
            "wait": False,
            "targetNamespace": namespace,
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
        },
    }


def dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects)
