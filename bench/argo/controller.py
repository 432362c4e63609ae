"""Running Argo Rollouts' controller as a process on loopback, against a local control plane, for
``bench/delivery.py``'s failed canary.

The binary and its CRDs come from ``bench/argo/build.sh`` (built from the Go module once per
machine, cached under Tether's cache; bench-only, never by ``scripts/setup``). The controller
runs in namespaced mode (``--namespaced --namespace NS``: it watches Rollouts, ReplicaSets,
AnalysisRuns and Services of that namespace only), leader election off, metrics and health on
free loopback ports (the build makes it listen on 127.0.0.1 instead of 0.0.0.0).
``POD_NAMESPACE`` is the same namespace, where it would look for its notification ConfigMap
(there is none: notifications stay off). It needs no webhook and no certificate: Argo Rollouts
validates Rollouts inside the controller, not through an admission webhook.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.flux.controllers import free_port

BUILD_SCRIPT = Path(__file__).with_name("build.sh")
API = "argoproj.io/v1alpha1"
START_LIMIT = 120.0


@dataclass(frozen=True)
class RolloutsBuild:
    controller: Path

    @property
    def crd_files(self) -> list[Path]:
        return sorted((self.controller.parent / "crds").glob("*.yaml"))


class RolloutsBuildFailed(RuntimeError):
    """``build.sh`` failed: the message carries the tail of its output."""


def build() -> RolloutsBuild:
    """The controller binary, building it first if it is not cached (minutes, once per machine)."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise RolloutsBuildFailed(f"bench/argo/build.sh failed ({result.returncode}):\n{tail}")
    return RolloutsBuild(controller=Path(result.stdout.split()[-1]))


def install_crds(kubectl: str, kubeconfig: Path, rollouts: RolloutsBuild) -> None:
    """Apply the module's CRDs (Rollout, AnalysisRun, AnalysisTemplate, ...) and wait until the
    API server serves them."""
    base = [kubectl, f"--kubeconfig={kubeconfig}"]
    for crd in rollouts.crd_files:
        subprocess.run(
            [*base, "apply", "--server-side", "--force-conflicts", "-f", str(crd)],
            check=True,
            capture_output=True,
        )
    names = [
        f"crd/{kind}.argoproj.io" for kind in ("rollouts", "analysisruns", "analysistemplates")
    ]
    # Not `kubectl wait`: on a CRD created an instant ago it fails at once ("status.conditions
    # accessor error: <nil>") instead of waiting for the condition.
    deadline = time.monotonic() + START_LIMIT
    pending = names
    while pending:
        pending = [name for name in pending if not _established(base, name)]
        if pending and time.monotonic() > deadline:
            raise RuntimeError(
                f"Argo Rollouts' CRDs not Established in {START_LIMIT:.0f} s: {pending}"
            )
        if pending:
            time.sleep(0.2)


def _established(kubectl: list[str], crd: str) -> bool:
    condition = '{.status.conditions[?(@.type=="Established")].status}'
    found = subprocess.run(
        [*kubectl, "get", crd, "-o", f"jsonpath={condition}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() == "True"


class RolloutsController:
    """The controller as a child process for one namespace; ``stop`` ends exactly this one."""

    def __init__(
        self, rollouts: RolloutsBuild, workdir: Path, namespace: str, kubeconfig: Path
    ) -> None:
        self.rollouts = rollouts
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.log = workdir / f"rollouts-controller-{namespace}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and return once its health endpoint answers (that says the process is up, not
        that its informers have synced: a caller waits for its first Rollout to be Healthy)."""
        healthz = free_port()
        argv = [
            str(self.rollouts.controller),
            f"--kubeconfig={self.kubeconfig}",
            "--namespaced",
            f"--namespace={self.namespace}",
            "--leader-elect=false",
            f"--metricsPort={free_port()}",
            f"--healthzPort={healthz}",
            "--loglevel=warn",
        ]
        env = {**os.environ, "POD_NAMESPACE": self.namespace}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_LIMIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"rollouts-controller exited at start ({self.log}):\n"
                    f"{self.log.read_text()[-3000:]}"
                )
            if self._healthy(healthz):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"rollouts-controller not healthy on 127.0.0.1:{healthz} within {START_LIMIT:.0f} s"
            f" (see {self.log})"
        )

    @staticmethod
    def _healthy(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
