"""The artifact format checked by a real reader: Flux's own source-controller (v1.9.3, built from
its Go module by bench/flux/build.sh) pulls an artifact pushed by ``tether push artifact`` through
an ``OCIRepository`` and reports it Ready with our manifest digest and annotations; and Tether
reads back a chart pushed by the real ``helm push``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.flux.controllers import build, free_port
from tests.conftest import Kubectl
from tests.oci.conftest import USER, Registry, write_manifests
from tests.oci.test_sync import helm_push
from tether.devcluster.controlplane import DevCluster
from tether.errors import SourceError
from tether.source.oci import fetch_oci_chart, push_artifact

_READY_WAIT = 180.0


@pytest.fixture
def source_controller(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Flux's source-controller watching ``namespace`` (its CRDs installed)."""
    binary = build().source_controller
    for crd in sorted((binary.parent / "crds").glob("*.yaml")):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "crd/ocirepositories.source.toolkit.fluxcd.io")
    storage = free_port()
    (tmp_path / "storage").mkdir()
    with (tmp_path / "source-controller.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(binary),
                f"--storage-path={tmp_path / 'storage'}",
                f"--storage-addr=127.0.0.1:{storage}",
                f"--storage-adv-addr=127.0.0.1:{storage}",
                f"--metrics-addr=127.0.0.1:{free_port()}",
                f"--health-addr=127.0.0.1:{free_port()}",
                "--enable-leader-election=false",
                "--watch-all-namespaces=false",
            ],
            env={
                **os.environ,
                "KUBECONFIG": str(dev_cluster.kubeconfig_path),
                "RUNTIME_NAMESPACE": namespace,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, tmp_path / "source-controller.log"
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def ready_condition(
    kubectl: Kubectl, namespace: str, name: str, controller: tuple[subprocess.Popen[bytes], Path]
) -> tuple[dict, dict]:
    """Poll until the OCIRepository's Ready condition is decided; (condition, status).

    source-controller writes the conditions and the rest of its status in two patches, so a
    Ready=True can be seen a moment before the artifact it describes: True counts as decided
    only once ``status.artifact`` is there too."""
    deadline = time.monotonic() + _READY_WAIT
    status: dict = {}
    process, log = controller
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"source-controller exited: {log.read_text()[-2000:]}")
        found = kubectl.get("ocirepository", name, namespace) or {}
        status = found.get("status") or {}
        for condition in status.get("conditions") or []:
            decided = (condition["status"] == "True" and "artifact" in status) or (
                condition["status"] == "False" and condition.get("reason") != "Progressing"
            )
            if condition["type"] == "Ready" and decided:
                return condition, status
        time.sleep(0.5)
    raise AssertionError(f"OCIRepository {name} never became Ready: {status}")


def test_fluxs_source_controller_reads_our_artifact(
    source_controller: tuple[subprocess.Popen[bytes], Path],
    namespace: str,
    kubectl: Kubectl,
    registry: Registry,
    repository: str,
    tmp_path: Path,
) -> None:
    content = write_manifests(tmp_path / "art" / "web", name="web", data="from-tether")
    digest = push_artifact(
        registry.ref(repository) + ":1.2.3",
        content.parent,
        "https://git.example/gitops.git",
        "main@sha1:0123456789abcdef0123456789abcdef01234567",
        registry.auth,
    )
    auth = base64.b64encode(f"{USER}:{registry.password}".encode()).decode()
    docker_config = {
        "auths": {registry.host: {"username": USER, "password": registry.password, "auth": auth}}
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "registry-login", "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {
            ".dockerconfigjson": base64.b64encode(json.dumps(docker_config).encode()).decode()
        },
    }
    oci_repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "interval": "10m",
            "url": registry.ref(repository),
            "ref": {"tag": "1.2.3"},
            "insecure": True,
            "secretRef": {"name": "registry-login"},
        },
    }
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [secret, oci_repository]}),
    )

    condition, status = ready_condition(kubectl, namespace, "web", source_controller)

    assert condition["status"] == "True", condition
    artifact = status["artifact"]
    assert artifact["revision"] == f"1.2.3@{digest}"
    assert (
        artifact["metadata"]["org.opencontainers.image.source"] == "https://git.example/gitops.git"
    )
    assert artifact["metadata"]["org.opencontainers.image.revision"].startswith("main@sha1:0123")


def test_a_chart_pushed_by_helm_is_read_back(
    registry: Registry, repository: str, helm: Path, tmp_path: Path
) -> None:
    digest = helm_push(helm, registry, tmp_path / "charts", "0.3.0", repository)
    chart = fetch_oci_chart(
        f"{registry.ref(repository)}/tiny", "~0.3", registry.auth, tmp_path / "cache"
    )
    assert (chart.name, chart.version, chart.digest) == ("tiny", "0.3.0", digest)
    pinned = fetch_oci_chart(
        f"{registry.ref(repository)}/tiny@{digest}", None, registry.auth, tmp_path / "cache"
    )
    assert (pinned.version, pinned.path) == ("0.3.0", chart.path)
    with pytest.raises(SourceError, match="not in the allowed digests") as refused:
        fetch_oci_chart(
            f"{registry.ref(repository)}/tiny",
            "~0.3",
            registry.auth,
            tmp_path / "other-cache",
            allowed_digests=("sha256:" + "2" * 64,),
        )
    assert digest in str(refused.value)
    assert not (tmp_path / "other-cache").exists()
    listing = subprocess.run(
        ["tar", "-tzf", str(chart.path)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "tiny/Chart.yaml" in listing
