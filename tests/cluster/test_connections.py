"""Reaching the real dev cluster the ways kubectl can: merged KUBECONFIG files with relative paths,
an IPv6 server address, and in-cluster config from a ServiceAccount token whose file rotates."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.cluster.conftest import (
    cluster_entry,
    service_account_token,
    whoami,
    whoami_once,
    write_kubeconfig,
)
from tests.conftest import Kubectl
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import in_cluster, load
from tether.devcluster.controlplane import DevCluster

pytestmark = pytest.mark.cluster


def test_merged_kubeconfig_files_reach_the_cluster(
    tmp_path: Path, dev_cluster: DevCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cluster is in one file, the admin user and the current context in another; each names
    # its certificate files relative to itself.
    cluster_dir, user_dir = tmp_path / "clusters", tmp_path / "users"
    cluster_dir.mkdir()
    user_dir.mkdir()
    shutil.copy(dev_cluster.pki.ca_cert, cluster_dir / "ca.crt")
    shutil.copy(dev_cluster.pki.admin_cert, user_dir / "admin.crt")
    shutil.copy(dev_cluster.pki.admin_key, user_dir / "admin.key")
    clusters = write_kubeconfig(
        cluster_dir / "config",
        clusters={"dev": {**cluster_entry(dev_cluster), "certificate-authority": "ca.crt"}},
    )
    users = write_kubeconfig(
        user_dir / "config",
        clusters={"dev": {"server": "https://127.0.0.1:9"}},  # shadowed by the first file
        users={"admin": {"client-certificate": "admin.crt", "client-key": "admin.key"}},
        contexts={"dev-admin": {"cluster": "dev", "user": "admin"}},
        current="dev-admin",
    )
    monkeypatch.setenv("KUBECONFIG", f"{clusters}:{tmp_path / 'absent'}:{users}")
    assert whoami_once(load()) == "tether-admin"


def test_ipv6_server_address(
    tmp_path: Path, dev_cluster: DevCluster, ipv6_loopback_port: int
) -> None:
    path = write_kubeconfig(
        tmp_path / "kubeconfig",
        clusters={"v6": cluster_entry(dev_cluster, f"https://[::1]:{ipv6_loopback_port}")},
        users={
            "admin": {
                "client-certificate": str(dev_cluster.pki.admin_cert),
                "client-key": str(dev_cluster.pki.admin_key),
            }
        },
        contexts={"v6": {"cluster": "v6", "user": "admin"}},
        current="v6",
    )
    connection = load(path)
    assert connection.server == f"https://[::1]:{ipv6_loopback_port}"
    # TLS verification is on: this passes only if the serving certificate names ::1.
    assert whoami_once(connection) == "tether-admin"


def service_account_directory(dev_cluster: DevCluster, directory: Path, token: str) -> Path:
    directory.mkdir()
    (directory / "token").write_text(token)
    shutil.copy(dev_cluster.pki.ca_cert, directory / "ca.crt")
    return directory


def test_in_cluster_rereads_the_rotated_token_on_every_request(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str
) -> None:
    alpha = service_account_token(kubectl, namespace, "alpha")
    beta = service_account_token(kubectl, namespace, "beta")
    directory = service_account_directory(dev_cluster, tmp_path / "serviceaccount", alpha)
    (directory / "namespace").write_text(namespace)
    state = dev_cluster.state()
    assert state is not None
    environ = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(state.ports["kube-apiserver"]),
    }
    connection = in_cluster(directory, environ)
    assert connection.namespace == namespace

    async def go() -> list[str]:
        async with KubeClient(connection) as client:
            first = await whoami(client)
            (directory / "token").write_text(beta)  # the kubelet rotates the projected token
            return [first, await whoami(client)]

    assert asyncio.run(asyncio.wait_for(go(), 60)) == [
        f"system:serviceaccount:{namespace}:alpha",
        f"system:serviceaccount:{namespace}:beta",
    ]


def test_in_cluster_with_an_ipv6_service_host(
    tmp_path: Path,
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    ipv6_loopback_port: int,
) -> None:
    token = service_account_token(kubectl, namespace, "alpha")
    directory = service_account_directory(dev_cluster, tmp_path / "serviceaccount", token)
    environ = {"KUBERNETES_SERVICE_HOST": "::1", "KUBERNETES_SERVICE_PORT": str(ipv6_loopback_port)}
    connection = in_cluster(directory, environ)
    assert connection.server == f"https://[::1]:{ipv6_loopback_port}"
    assert whoami_once(connection) == f"system:serviceaccount:{namespace}:alpha"
