"""kubeconfig exec credential plugins, run like kubectl runs them, against the real dev cluster:
a real plugin script mints real ServiceAccount tokens (or a client certificate signed by the
cluster's CA) and records every run, so the tests count runs from the outside."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.cluster.conftest import (
    Plugin,
    cluster_entry,
    exec_user,
    service_account_token,
    whoami,
    whoami_once,
    write_kubeconfig,
)
from tests.conftest import Kubectl
from tether.cluster.auth import EXPIRY_MARGIN, KubeAuth
from tether.cluster.client import ApiError, KubeClient
from tether.cluster.kubeconfig import Connection, load
from tether.devcluster.controlplane import DevCluster
from tether.errors import ClusterError

pytestmark = pytest.mark.cluster


def exec_connection(
    tmp_path: Path, cluster: dict, plugin: Plugin, **exec_extra: object
) -> Connection:
    path = write_kubeconfig(
        tmp_path / "kubeconfig",
        clusters={"dev": cluster},
        users={"plugin-user": exec_user(plugin, **exec_extra)},
        contexts={"dev": {"cluster": "dev", "user": "plugin-user"}},
        current="dev",
    )
    return load(path)


def run(coroutine_factory):
    return asyncio.run(asyncio.wait_for(coroutine_factory(), 120))


def test_credential_is_cached_for_many_requests_and_used(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    token = service_account_token(kubectl, namespace, "alpha")
    plugin.plan(tokens=[token], expires_in=3600)
    connection = exec_connection(
        tmp_path,
        cluster_entry(dev_cluster),
        plugin,
        args=["--flag", "value"],
        env=[{"name": "PLUGIN_MODE", "value": "test"}],
    )

    async def go() -> list[str]:
        async with KubeClient(connection) as client:
            return [await whoami(client) for _ in range(10)]

    names = run(go)
    assert names == [f"system:serviceaccount:{namespace}:alpha"] * 10
    (only_run,) = plugin.runs()
    assert only_run["args"] == ["--flag", "value"]
    assert only_run["env"] == {"PLUGIN_MODE": "test"}
    assert only_run["exec_info"] == {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
    # A second client made from the same connection shares the credential.
    assert whoami_once(connection) == f"system:serviceaccount:{namespace}:alpha"
    assert len(plugin.runs()) == 1


def test_credential_without_expiry_is_kept_until_rejected(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    plugin.plan(tokens=[service_account_token(kubectl, namespace, "alpha")])
    connection = exec_connection(tmp_path, cluster_entry(dev_cluster), plugin)
    for _ in range(3):
        whoami_once(connection)
    assert len(plugin.runs()) == 1


def test_plugin_runs_again_once_the_credential_expires(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    alpha = service_account_token(kubectl, namespace, "alpha")
    beta = service_account_token(kubectl, namespace, "beta")
    lifetime = EXPIRY_MARGIN.total_seconds() + 3
    plugin.plan(tokens=[alpha, beta], expires_in=lifetime)
    connection = exec_connection(tmp_path, cluster_entry(dev_cluster), plugin)

    async def go() -> list[str]:
        async with KubeClient(connection) as client:
            names = [await whoami(client), await whoami(client)]
            assert len(plugin.runs()) == 1
            renew_at = plugin.runs()[0]["expires"] - EXPIRY_MARGIN.total_seconds()
            await asyncio.sleep(max(0.0, renew_at - time.time()) + 0.2)
            names += [await whoami(client), await whoami(client)]
            return names

    alpha_name = f"system:serviceaccount:{namespace}:alpha"
    beta_name = f"system:serviceaccount:{namespace}:beta"
    assert run(go) == [alpha_name, alpha_name, beta_name, beta_name]
    assert len(plugin.runs()) == 2


def test_concurrent_requests_run_the_plugin_once(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    plugin.plan(tokens=[service_account_token(kubectl, namespace, "alpha")], sleep=1.0)
    connection = exec_connection(tmp_path, cluster_entry(dev_cluster), plugin)

    async def go() -> list[str]:
        async with KubeClient(connection, concurrency=8) as one, KubeClient(connection) as two:
            return await asyncio.gather(*(whoami(c) for c in [one] * 8 + [two] * 4))

    assert set(run(go)) == {f"system:serviceaccount:{namespace}:alpha"}
    assert len(plugin.runs()) == 1


def test_event_loop_keeps_running_while_the_plugin_runs(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    # The plugin waits (up to 20 s, then fails) until a ticker task on the event loop has ticked
    # five times, then sleeps a second and records how many ticks happened meanwhile.
    plugin.plan(
        tokens=[service_account_token(kubectl, namespace, "alpha")], wait_for_ticks=5, sleep=1.0
    )
    connection = exec_connection(tmp_path, cluster_entry(dev_cluster), plugin)

    async def ticker() -> None:
        while True:
            plugin.tick()
            await asyncio.sleep(0.05)

    async def go() -> str:
        task = asyncio.create_task(ticker())
        try:
            async with KubeClient(connection) as client:
                return await whoami(client)
        finally:
            task.cancel()

    assert run(go) == f"system:serviceaccount:{namespace}:alpha"
    (only_run,) = plugin.runs()
    assert only_run["ticks_during_sleep"] > 0


def test_401_runs_the_plugin_once_more_and_retries(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    token = service_account_token(kubectl, namespace, "alpha")
    plugin.plan(tokens=["revoked-token", token], expires_in=3600)
    connection = exec_connection(tmp_path, cluster_entry(dev_cluster), plugin)
    assert whoami_once(connection) == f"system:serviceaccount:{namespace}:alpha"
    assert len(plugin.runs()) == 2
    assert whoami_once(connection) == f"system:serviceaccount:{namespace}:alpha"
    assert len(plugin.runs()) == 2


def test_a_credential_rejected_twice_is_an_api_error_without_the_token(
    tmp_path: Path, dev_cluster: DevCluster, plugin: Plugin
) -> None:
    plugin.plan(tokens=["never-valid-secret-value"], expires_in=3600)
    connection = exec_connection(tmp_path, cluster_entry(dev_cluster), plugin)
    with pytest.raises(ApiError) as raised:
        whoami_once(connection)
    assert raised.value.status == 401
    assert "never-valid-secret-value" not in str(raised.value)
    assert len(plugin.runs()) == 2  # the first run, and one renewal: no loop


def test_sync_httpx_client_uses_the_same_auth(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    plugin.plan(tokens=["revoked-token", service_account_token(kubectl, namespace, "alpha")])
    connection = exec_connection(tmp_path, cluster_entry(dev_cluster), plugin)
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    with httpx.Client(
        base_url=connection.server,
        verify=connection.ssl_context(),
        auth=KubeAuth(connection.credentials),
    ) as client:
        for _ in range(3):
            response = client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review)
            assert response.status_code == 201
            username = response.json()["status"]["userInfo"]["username"]
            assert username == f"system:serviceaccount:{namespace}:alpha"
    assert len(plugin.runs()) == 2  # the rejected token, then the good one, kept


def client_certificate(dev_cluster: DevCluster, user: str) -> tuple[str, str]:
    """A client certificate for ``user`` signed by the dev cluster's CA (PEM cert, PEM key)."""
    ca_key = serialization.load_pem_private_key(dev_cluster.pki.ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(dev_cluster.pki.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def test_client_certificate_from_the_plugin(
    tmp_path: Path, dev_cluster: DevCluster, plugin: Plugin
) -> None:
    cert, key = client_certificate(dev_cluster, "exec-certificate-user")
    plugin.plan(cert=cert, key=key, expires_in=3600)
    connection = exec_connection(tmp_path, cluster_entry(dev_cluster), plugin)
    assert whoami_once(connection) == "exec-certificate-user"
    assert whoami_once(connection) == "exec-certificate-user"
    assert len(plugin.runs()) == 1


def test_provide_cluster_info_and_v1beta1(
    tmp_path: Path, dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, plugin: Plugin
) -> None:
    plugin.plan(
        tokens=[service_account_token(kubectl, namespace, "alpha")],
        api_version="client.authentication.k8s.io/v1beta1",
    )
    cluster = cluster_entry(dev_cluster)
    cluster["extensions"] = [
        {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "tether-tests"}}
    ]
    path = write_kubeconfig(
        tmp_path / "kubeconfig",
        clusters={"dev": cluster},
        users={
            "plugin-user": exec_user(
                plugin,
                apiVersion="client.authentication.k8s.io/v1beta1",
                provideClusterInfo=True,
                interactiveMode="IfAvailable",
            )
        },
        contexts={"dev": {"cluster": "dev", "user": "plugin-user"}},
        current="dev",
    )
    assert whoami_once(load(path)) == f"system:serviceaccount:{namespace}:alpha"
    (only_run,) = plugin.runs()
    info = only_run["exec_info"]
    assert info["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert info["spec"]["interactive"] is False  # the tests' stdin is not a terminal
    assert info["spec"]["cluster"] == {
        "server": cluster["server"],
        "certificate-authority-data": base64.b64encode(
            dev_cluster.pki.ca_cert.read_bytes()
        ).decode(),
        "config": {"audience": "tether-tests"},
    }


# -- failures: clear, naming the user and the command, never the credential --------------------


def failing(tmp_path: Path, plugin: Plugin, **exec_extra: object) -> str:
    """The error the plugin's credential gives (no API server involved: it fails first)."""
    connection = exec_connection(tmp_path, {"server": "https://127.0.0.1:9"}, plugin, **exec_extra)
    with pytest.raises(ClusterError) as raised:
        connection.credentials.bearer_token()
    message = str(raised.value)
    assert "kubeconfig user 'plugin-user'" in message and str(tmp_path / "kubeconfig") in message
    return message


def test_missing_command_shows_the_install_hint(tmp_path: Path, plugin: Plugin) -> None:
    plugin.command.unlink()
    message = failing(
        tmp_path, plugin, installHint="Install it with: pip install credential-plugin"
    )
    assert f"exec plugin '{plugin.command}': command not found" in message
    assert message.endswith("Install it with: pip install credential-plugin")


def test_failing_plugin_shows_exit_code_and_stderr(tmp_path: Path, plugin: Plugin) -> None:
    plugin.plan(tokens=["secret-in-stdout"], exit=3, stderr="login expired: run `sso login`\n")
    message = failing(tmp_path, plugin)
    assert "failed with exit code 3" in message and "login expired: run `sso login`" in message


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ({"stdout": "token: secret-garbage-value"}, "did not print an ExecCredential JSON object"),
        (
            {
                "stdout": json.dumps(
                    {
                        "kind": "ExecCredential",
                        "apiVersion": "v9",
                        "status": {"token": "secret-garbage-value"},
                    }
                )
            },
            "printed an ExecCredential of apiVersion 'v9'",
        ),
        (
            {
                "tokens": ["secret-garbage-value"],
                "expires_in": None,
                "stdout": json.dumps(
                    {
                        "kind": "ExecCredential",
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "status": {"token": "secret-garbage-value", "expirationTimestamp": "soon"},
                    }
                ),
            },
            "status.expirationTimestamp 'soon' is not an RFC 3339 time",
        ),
        (
            {
                "stdout": json.dumps(
                    {
                        "kind": "ExecCredential",
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "status": {},
                    }
                )
            },
            "returned neither a token nor a client certificate",
        ),
    ],
)
def test_garbage_output_is_named_without_echoing_it(
    tmp_path: Path, plugin: Plugin, plan: dict, expected: str
) -> None:
    plugin.plan(**plan)
    message = failing(tmp_path, plugin)
    assert expected in message and "secret-garbage-value" not in message


def test_unloadable_client_certificate_is_named(tmp_path: Path, plugin: Plugin) -> None:
    plugin.plan(cert="not a certificate", key="secret-key-material")
    connection = exec_connection(tmp_path, {"server": "https://127.0.0.1:9"}, plugin)
    client = httpx.Client(base_url=connection.server, verify=connection.ssl_context())
    with client, pytest.raises(ClusterError) as raised:
        client.get("/version", auth=KubeAuth(connection.credentials))
    message = str(raised.value)
    assert "kubeconfig user 'plugin-user'" in message
    assert "returned a client certificate and key that do not load" in message
    assert "secret-key-material" not in message


def test_interactive_mode_always_needs_a_terminal(tmp_path: Path, plugin: Plugin) -> None:
    message = failing(tmp_path, plugin, interactiveMode="Always")
    assert "needs a terminal (interactiveMode: Always)" in message
    assert plugin.runs() == []
