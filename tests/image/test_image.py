"""The agent image, as built by ``scripts/build-image``: its configuration (non-root user,
entrypoint, OCI labels), what it leaves out, its OCI archive, and ``tether agent`` run FROM it
(buildah, chroot isolation, host network) syncing an App from a Git daemon on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tarfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent.conftest import (
    app_condition,
    free_port,
    provision_deployer,
    source_and_app,
    wait_for,
)
from tests.conftest import GitRepo, Kubectl
from tests.image.conftest import ROOT, WorkingContainer, image_config
from tests.sync.manifests import configmap
from tether.agent import install
from tether.core.paths import cache_root
from tether.devcluster.controlplane import DevCluster

pytestmark = pytest.mark.cluster

AGENT_DEPLOYMENT = next(o for o in install.manifests() if o["kind"] == "Deployment")
AGENT_UID = AGENT_DEPLOYMENT["spec"]["template"]["spec"]["securityContext"]["runAsUser"]


def git_head() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_image_is_the_one_install_names_and_runs_tether_as_a_non_root_user(
    agent_image: str,
) -> None:
    assert agent_image == install.IMAGE
    config = image_config(agent_image)
    user, _, group = config["User"].partition(":")
    assert int(user) == AGENT_UID != 0 and int(group) == AGENT_UID
    assert config["Entrypoint"] == ["/opt/tether/bin/tether"]
    assert config["Cmd"][0] == "agent"
    assert "TETHER_CACHE_DIR=/cache" in config["Env"]
    # The Deployment relies on both: its args start with `agent`, its volume is the cache.
    [agent] = AGENT_DEPLOYMENT["spec"]["template"]["spec"]["containers"]
    assert "command" not in agent and agent["args"][0] == "agent"
    assert {"name": "cache", "mountPath": "/cache"} in agent["volumeMounts"]

    labels = config["Labels"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.revision"] in (git_head(), f"{git_head()}-dirty")
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_the_oci_archive_holds_the_same_image(agent_image: str) -> None:
    archive = cache_root() / "images" / f"tether-{agent_image.rsplit(':', 1)[1]}.oci.tar"
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        [entry] = index["manifests"]
        algorithm, digest = entry["digest"].split(":")
        manifest = json.load(tar.extractfile(f"blobs/{algorithm}/{digest}"))  # type: ignore[arg-type]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == agent_image
    assert manifest["config"]["digest"] == f"sha256:{image_config(agent_image)['ImageID']}"


def test_the_image_has_its_tools_and_leaves_out_apt_lists_pip_caches_and_docs(
    container: WorkingContainer,
) -> None:
    root = container.root()
    assert (root / "usr/bin/python3.11").is_file()
    assert (root / "usr/bin/git").is_file() and (root / "usr/local/bin/kustomize").is_file()
    assert (root / "usr/local/bin/helm").is_file()  # chart Apps are rendered in the agent
    # what tether.source.verify runs to check signed commits
    assert (root / "usr/bin/ssh-keygen").is_file() and (root / "usr/bin/gpg").is_file()
    assert sorted(p.name for p in (root / "var/lib/apt/lists").iterdir() if p.is_file()) in (
        [],
        ["lock"],
    )
    assert not list((root / "var/cache/apt").glob("*.deb"))
    site = root / "opt/tether/lib/python3.11/site-packages"
    assert (site / "tether").is_dir()
    assert not (site / "pip").exists() and not (root / "root/.cache").exists()
    docs = [p for p in (root / "usr/share/doc").rglob("*") if p.is_file() and not p.is_symlink()]
    assert docs and {p.name for p in docs} == {"copyright"}  # licences kept, documentation not
    assert not [p for p in (root / "usr/share/man").rglob("*") if p.is_file()]
    cache = (root / "cache").stat()
    assert (cache.st_uid, cache.st_gid) == (AGENT_UID, AGENT_UID)


class GitDaemon:
    """``git daemon`` serving the repositories under ``base`` read-only on loopback."""

    def __init__(self, base: Path, log: Path) -> None:
        self.port = free_port()
        base.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--informative-errors",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={base}",
                str(base),
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.listening, 30, "git daemon to listen")

    def listening(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("git daemon exited")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class AgentInContainer:
    """``tether agent`` run by ``buildah run`` in a working container of the image: chroot
    isolation, the host's network (the API server is on loopback), the kubeconfig bind-mounted.
    ``buildah run`` ignores the image's entrypoint, so the command is the entrypoint read from
    the image config plus the agent's arguments, as a container runtime would start it."""

    def __init__(
        self, container: WorkingContainer, entrypoint: list[str], kubeconfig: Path, namespace: str
    ) -> None:
        self.port = free_port()
        self.log = kubeconfig.parent / "agent.log"
        argv = [
            "buildah",
            "run",
            "--isolation=chroot",
            "--network=host",
            f"--volume={kubeconfig}:/etc/tether/kubeconfig:ro",
            container.name,
            "--",
            *entrypoint,
            "agent",
            "--kubeconfig=/etc/tether/kubeconfig",
            f"--namespace={namespace}",
            f"--lease-namespace={namespace}",
            "--identity=image-agent",
            f"--listen=127.0.0.1:{self.port}",
            "--lease-duration=3",
        ]
        self.process = subprocess.Popen(
            argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(self.healthy, 60, "the agent in the image to serve /healthz")

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the agent in the image exited:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # what buildah started, in its group
            os.killpg(self.process.pid, signal.SIGKILL)


def portable_kubeconfig(kubectl: Kubectl, directory: Path) -> Path:
    """The test cluster's kubeconfig with its certificates inlined, readable by the agent user."""
    text = kubectl("config", "view", "--raw", "--flatten", "--minify").stdout
    path = directory / "kubeconfig"
    path.write_text(text)
    path.chmod(0o644)
    return path


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    daemon = GitDaemon(tmp_path / "served", tmp_path / "git-daemon.log")
    yield daemon
    daemon.stop()


def test_the_agent_from_the_image_syncs_an_app_and_heals_drift(
    dev_cluster: DevCluster,
    tether_crds: None,
    kubectl: Kubectl,
    namespace: str,
    container: WorkingContainer,
    agent_image: str,
    git_daemon: GitDaemon,
    tmp_path: Path,
) -> None:
    repo = GitRepo(tmp_path / "served" / "gitops")
    repo.write("kustomization.yaml", "resources: [settings.yaml]\n")  # the image's kustomize
    commit = repo.write("settings.yaml", configmap("settings", level="info")).commit("first")
    provision_deployer(kubectl, namespace)  # the identity the App is applied as
    kubectl("apply", "-f", "-", stdin=source_and_app(namespace, git_daemon.url("gitops")))

    def settings_from_git() -> bool:
        return (kubectl.get("configmap", "settings", namespace) or {}).get("data") == {
            "level": "info"
        }

    def ready() -> bool:
        return (app_condition(kubectl, namespace, "web", "Ready") or {}).get("status") == "True"

    entrypoint = image_config(agent_image)["Entrypoint"]
    kubeconfig = portable_kubeconfig(kubectl, tmp_path)
    agent = AgentInContainer(container, entrypoint, kubeconfig, namespace)
    try:
        wait_for(settings_from_git, 90, "the agent in the image to apply the ConfigMap")
        wait_for(ready, 60, "the App to be Ready")
        app = kubectl.get("apps.tether.dev", "web", namespace) or {}
        assert app["status"]["lastAppliedRevision"] == commit

        edit = kubectl(
            "patch", "configmap", "settings", "-n", namespace, "-p", '{"data":{"level":"x"}}'
        )
        assert edit.stdout.strip() == "configmap/settings patched"
        wait_for(settings_from_git, 60, "the agent in the image to undo a hand edit")
    finally:
        agent.stop()

    mirrors = container.root() / "cache" / "git"
    assert mirrors.is_dir() and mirrors.stat().st_uid == AGENT_UID  # written as the image's user
