"""Shared fixtures: one real local control plane for the whole test session, a fresh namespace
per test, real Git repositories, and the CLI run in-process."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from tether.devcluster.controlplane import DevCluster, running
from tether.devcluster.metrics import MetricsServer, metrics_cluster
from tether.devcluster.provision import ensure_binary
from tether.source.workspace import commit_all, init_repository

pytest_plugins = ["tests.postgres"]

# A pytest-xdist worker starts with COLUMNS=80 in its environment. Tether's Rich consoles take a
# width found in the environment when they are created, once per process, and would then wrap
# every message at 80 columns whatever a test's CliRunner sets (a test's long tmp_path cut in
# two): a worker runs the CLI as a plain session does, with no width until a test gives one.
# Nothing above imports tether.cli; this runs before any test module does.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)

# In CI the property-based tests draw the same examples every run (a rare edge found by a random
# draw must not fail an unrelated landing); developers' runs stay random and keep exploring.
settings.register_profile("ci", derandomize=True, deadline=None, database=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# What a file's tests wait on, heaviest first: files that run agent processes take minutes, files
# on real servers tens of seconds, the rest seconds.
_WAITING_FIXTURES = (
    ("start_agent",),
    ("dev_cluster", "gitea", "prometheus", "registry", "postgres_url", "alertmanager"),
)


def _file_weight(fixturenames: list[str]) -> int:
    for weight, names in enumerate(_WAITING_FIXTURES):
        if any(name in fixturenames for name in names):
            return weight
    return len(_WAITING_FIXTURES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files that wait longest first (the order within each class and file is kept).

    ``scripts/test`` hands whole files to pytest-xdist workers in this order
    (``--dist loadfile --no-loadscope-reorder``): started first, the long agent files overlap
    each other and the many short files fill the gaps, instead of one long file running alone
    at the end.
    """
    weights: dict[Path, int] = {}
    for item in items:
        weight = _file_weight(getattr(item, "fixturenames", []))
        weights[item.path] = min(weights.get(item.path, weight), weight)
    items.sort(key=lambda item: weights[item.path])


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """The real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)."""
    with running("tests", tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def metrics_dev_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DevCluster, MetricsServer]]:
    """A second control plane with a real metrics API (metrics-server, kwok's simulated kubelet
    resource metrics), for the tests of HorizontalPodAutoscalers. Opt-in: started only by the
    tests that ask for it, so the rest of the suite does not pay for it."""
    with metrics_cluster("metrics", tmp_path_factory.mktemp("metrics-cluster")) as pair:
        yield pair


@dataclass
class Kubectl:
    """The real kubectl against the test cluster, for hand edits and independent checks."""

    binary: Path
    kubeconfig: Path

    def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=check,
            input=stdin,
        )

    def get(self, kind: str, name: str, namespace: str = "") -> dict | None:
        args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        result = self(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        return json.loads(result.stdout)


def configmaps_only_service_account(
    kubectl: Kubectl, namespace: str, name: str = "deployer"
) -> str:
    """A ServiceAccount that may touch ConfigMaps in ``namespace`` and nothing else."""
    kubectl("create", "serviceaccount", name, "-n", namespace)
    kubectl(
        "create", "role", "configmaps-only", "-n", namespace, "--verb=*", "--resource=configmaps"
    )
    kubectl(
        "create",
        "rolebinding",
        name,
        "-n",
        namespace,
        "--role=configmaps-only",
        f"--serviceaccount={namespace}:{name}",
    )
    return f"{namespace}/{name}"


@pytest.fixture(scope="session")
def kubectl(dev_cluster: DevCluster) -> Kubectl:
    return Kubectl(ensure_binary("kubectl"), dev_cluster.kubeconfig_path)


@pytest.fixture
def namespace(kubectl: Kubectl) -> str:
    """A new namespace for one test (left for the cluster teardown to remove)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    return name


class GitRepo:
    """A real Git repository a test writes and commits to, like a person pushing changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        init_repository(root)

    def write(self, path: str, text: str) -> GitRepo:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return self

    def remove(self, path: str) -> GitRepo:
        (self.root / path).unlink()
        return self

    def commit(self, message: str = "change") -> str:
        return commit_all(self.root, message)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "gitops")


@dataclass
class Cli:
    """The ``tether`` CLI run in-process against the test cluster with a private audit DB."""

    kubeconfig: Path
    db: Path

    def __call__(self, *args: str) -> tuple[int, str, str]:
        from tether.cli.main import app  # imported late: see the COLUMNS note at the top

        runner = CliRunner()
        needs_cluster = args and args[0] in ("sync", "diff", "status")
        extra = [f"--kubeconfig={self.kubeconfig}"] if needs_cluster else []
        result = runner.invoke(
            app, [*args, *extra], env={"TETHER_DB": str(self.db), "COLUMNS": "200"}
        )
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cli(dev_cluster: DevCluster, tmp_path: Path) -> Cli:
    return Cli(dev_cluster.kubeconfig_path, tmp_path / "audit.db")
