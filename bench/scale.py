"""What the scale benchmarks (``agent_1000_apps``, ``agent_big_app``, ``agent_drift``) share: a
control plane of their own, kubectl, namespaces, identities whose requests are counted, the agent
started as such an identity, and Git served over HTTP on loopback.

Their cluster is ``DevCluster("bench-scale")`` (its own directory under Tether's cache), so they
never touch the clusters of the test suite or of the older benchmarks. It is stopped at the end
unless ``BENCH_KEEP_CLUSTER=1``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import gitserver, identity
from bench.common import install_crds, provision_deployer
from bench.flux import controllers as flux
from tether.agent import crds
from tether.agent.settings import DEFAULT_SERVICE_ACCOUNT
from tether.cluster import kubeconfig as kubeconfig_module
from tether.cluster.kubeconfig import Connection
from tether.devcluster import versions
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import component_cache_dir, ensure_binary

CLUSTER = "bench-scale"


@dataclass
class Bench:
    cluster: DevCluster
    kubeconfig: Path
    kubectl: str
    tmp: Path
    identities: dict[str, Path] = field(default_factory=dict)
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: dict[int, int] = field(default_factory=dict)  # agent pid → its /metrics port

    @property
    def connection(self) -> Connection:
        return kubeconfig_module.load(self.kubeconfig)

    def run(self, *argv: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [self.kubectl, f"--kubeconfig={self.kubeconfig}", *argv],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.exit(f"kubectl {' '.join(argv[:3])} failed: {result.stderr[-2000:]}")
        return result.stdout

    def apply(self, text: str) -> None:
        self.run("apply", "--server-side", "-f", "-", stdin=text)

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:5]}"
        self.run("create", "namespace", name)
        return name

    def identity(self, name: str) -> Path:
        """A kubeconfig for ``bench-<name>``, whose requests ``requests`` counts."""
        if name not in self.identities:
            self.identities[name] = identity.create(
                self.cluster, self.kubectl, name, self.tmp / "identities"
            )
        return self.identities[name]

    def requests(self, *names: str) -> float:
        return identity.requests_by(self.cluster, *names)

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(20)
                except subprocess.TimeoutExpired:
                    child.kill()
        if os.environ.get("BENCH_KEEP_CLUSTER") != "1":
            self.cluster.down()


def setup() -> Bench:
    cluster = DevCluster(CLUSTER)
    kubeconfig = cluster.up()
    built = component_cache_dir(versions.KUBERNETES_COMPONENT) / "kubectl"
    kubectl = str(built if built.is_file() else ensure_binary("kubectl"))
    install_crds(kubectl, kubeconfig)
    return Bench(cluster, kubeconfig, kubectl, Path(tempfile.mkdtemp(prefix="tether-bench-")))


def serve_git(bench: Bench, repos: Path) -> str:
    """Serve every repository under ``repos`` over smart HTTP; the base URL."""
    port = flux.free_port()
    bench.children.append(gitserver.start(repos, port))
    return f"http://127.0.0.1:{port}"


def start_agent(
    bench: Bench,
    namespace: str,
    who: str = "agent",
    code: Path | None = None,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """``tether agent`` for ``namespace`` as identity ``bench-<who>``, once it leads; ``code``:
    a directory holding another version of the ``tether`` package to run instead; ``extra``:
    more flags (e.g. ``--max-concurrent=8``)."""
    provision_deployer(bench.kubeconfig, namespace)
    identity.count_impersonated(
        bench.kubectl, bench.kubeconfig, who, namespace, DEFAULT_SERVICE_ACCOUNT
    )
    port = flux.free_port()
    env = {**os.environ, "TETHER_DB": str(bench.tmp / f"audit-{namespace}.db")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    argv = [
        sys.executable,
        "-m",
        "tether.cli.main",
        "agent",
        f"--kubeconfig={bench.identity(who)}",
        f"--namespace={namespace}",
        f"--lease-namespace={namespace}",
        f"--listen=127.0.0.1:{port}",
        f"--log-level={os.environ.get('TETHER_BENCH_AGENT_LOG', 'warning')}",
        *extra,
    ]
    log = (bench.tmp / f"agent-{namespace}.log").open("wb")
    agent = subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=code or Path.cwd()
    )
    bench.children.append(agent)
    bench.ports[agent.pid] = port
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            sys.exit(f"the agent exited; see {bench.tmp / f'agent-{namespace}.log'}")
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            if "tether_leader 1.0" in text:
                return agent
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit("the agent did not become leader within 60 s")


def previous_code(bench: Bench, revision: str) -> Path:
    """The ``tether`` package as it was at ``revision`` of this repository, extracted."""
    target = bench.tmp / f"tether-{revision}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision, "tether"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def flux_build() -> flux.FluxBuild | str:
    """Flux's binaries, or why there are none (the benchmark then runs without that peer)."""
    try:
        return flux.build()
    except flux.FluxBuildFailed as failure:
        return str(failure)


def until_quiet(
    bench: Bench, *who: str, still: float = 4.0, limit: float = 240.0
) -> tuple[float, float]:
    """Wait until the identities ``who`` have been quiet for ``still`` seconds: no more than
    the Lease renewals (a GET and a PUT every 2 s, so about one request a second); the seconds
    until the quiet began and the requests sent until then."""
    started = time.monotonic()
    samples = [(started, bench.requests(*who))]
    while time.monotonic() - started < limit:
        time.sleep(1.0)
        samples.append((time.monotonic(), bench.requests(*who)))
        now, count = samples[-1]
        older = [(t, c) for t, c in samples if now - t >= still]
        if older and count - older[-1][1] <= still + 1:
            return older[-1][0] - started, older[-1][1] - samples[0][1]
    return limit, samples[-1][1] - samples[0][1]


def metric_sum(port: int, name: str, contains: str = "") -> float:
    """The sum of every sample of ``name`` (whose labels contain ``contains``) on a
    Prometheus endpoint on loopback."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and contains in line:
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


def load() -> str:
    """The machine's load average (1, 5 min): the benchmarks share 2 cores with other work."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} CPUs"


def start_flux(bench: Bench, build: flux.FluxBuild, namespace: str) -> flux.FluxControllers:
    """Flux's CRDs installed, both controllers running for ``namespace`` with their own
    identities, their caches synced."""
    flux.install_crds(bench.kubectl, bench.kubeconfig, build)
    controllers = flux.FluxControllers(
        build,
        bench.tmp / f"flux-{namespace}",
        namespace,
        bench.identity("flux-source"),
        bench.identity("flux-kustomize"),
    )
    controllers.start()
    bench.children.extend(controllers.processes)
    time.sleep(3)
    return controllers


def source_and_app(
    namespace: str, url: str, app: str, interval: str = "10m"
) -> list[dict[str, object]]:
    """A GitSource ``repo`` for ``url`` and an App ``app`` of its ``app`` path (prune, selfHeal),
    in a Project ``bench`` that may deploy anything (the 35-kind app has CRDs and cluster-scoped
    objects), applied as the namespace's deployer ServiceAccount."""
    return [
        {
            "apiVersion": crds.API_VERSION,
            "kind": "Project",
            "metadata": {"name": "bench", "namespace": namespace},
            "spec": {
                "destinations": ["*"],
                "clusterScoped": True,
                "serviceAccountName": DEFAULT_SERVICE_ACCOUNT,
            },
        },
        {
            "apiVersion": crds.API_VERSION,
            "kind": "GitSource",
            "metadata": {"name": "repo", "namespace": namespace},
            "spec": {"url": url, "interval": interval},
        },
        {
            "apiVersion": crds.API_VERSION,
            "kind": "App",
            "metadata": {"name": app, "namespace": namespace},
            "spec": {
                "sourceRef": {"name": "repo"},
                "path": "app",
                "project": "bench",
                "syncPolicy": {"interval": "10m", "prune": True, "selfHeal": True},
            },
        },
    ]


def tether_sync(bench: Bench, url: str, app: str, namespace: str) -> list[str]:
    """The peer command: one cold ``tether sync`` of the ``app`` path as client ``sync``."""
    return [
        str(Path(sys.executable).parent / "tether"),
        "sync",
        "--source",
        url,
        "--path",
        "app",
        "--app",
        app,
        "-n",
        namespace,
        "--timeout",
        "0",
        f"--kubeconfig={bench.identity('sync')}",
    ]


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "n/a"
