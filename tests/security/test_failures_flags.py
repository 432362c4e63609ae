"""Issue #12, "Why" (low): a bad client-certificate file in the kubeconfig or bad agent flags
ended in a traceback with exit 1; and an empty webhook secret file meant no authentication.
Each now gives a clear message naming the flag or the file, and exit 2, in-process and as a
real ``tether`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import GitRepo
from tether.cli.main import app
from tether.devcluster.controlplane import DevCluster


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert not result.exception or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


def run_process(*args: str, timeout: float = 60) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "COLUMNS": "200"},  # as run(): a long tmp_path is not wrapped
    )
    return done.returncode, done.stderr


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "hook-secret"
    path.write_text("a-real-secret\n")
    return path


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--shard", "nope"], "--shard"),
        (["--shard", "3/2"], "--shard"),
        (["--listen", "nope"], "--listen"),
        (["--listen", "127.0.0.1:99999"], "--listen"),
        (["--log-level", "loud"], "--log-level"),
        (["--lease-duration", "soon"], "--lease-duration"),
        (["--max-concurrent", "0"], "--max-concurrent"),
        (["--interval", "nope"], "--interval"),
        (["--webhook-secret-file", "/nonexistent/hook-secret"], "--webhook-secret-file"),
    ],
)
def test_bad_agent_flags_are_usage_errors(flags: list[str], named: str) -> None:
    code, err = run("agent", "--kubeconfig", "/nonexistent/kubeconfig", *flags)
    assert code == 2 and named in err and "Traceback" not in err, err


def test_an_empty_webhook_secret_file_is_refused_at_start_up(tmp_path: Path) -> None:
    for content in ("", "\n  \n"):
        empty = tmp_path / "empty-secret"
        empty.write_text(content)
        code, err = run_process("agent", f"--webhook-secret-file={empty}", "--listen=127.0.0.1:0")
        assert code == 2 and "empty" in err and str(empty) in err.replace("\n", ""), err
        assert "Traceback" not in err


def broken_kubeconfig(dev_cluster: DevCluster, tmp_path: Path, cert: bytes | None) -> Path:
    """The dev cluster's kubeconfig with the client certificate replaced by a file holding
    ``cert`` (None: a path that does not exist)."""
    config = yaml.safe_load(dev_cluster.kubeconfig_path.read_text())
    user = config["users"][0]["user"]
    user.pop("client-certificate-data", None)
    target = tmp_path / "client.crt"
    if cert is not None:
        target.write_bytes(cert)
    user["client-certificate"] = str(target)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("cert", [b"not a certificate\n", None], ids=["garbage", "missing"])
def test_a_bad_client_certificate_is_a_clean_error_everywhere(
    dev_cluster: DevCluster, tmp_path: Path, secret_file: Path, cert: bytes | None, repo: GitRepo
) -> None:
    kubeconfig = broken_kubeconfig(dev_cluster, tmp_path, cert)
    repo.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n").commit()
    flag = f"--kubeconfig={kubeconfig}"
    for args in (
        ["sync", "--source", str(repo.root), "--app", "web", flag],
        ["diff", "--source", str(repo.root), "--app", "web", flag],
        ["status", "web", flag],
        ["get", "apps", flag],
        ["get", "app", "web", flag],
        ["install", flag],
    ):
        code, err = run(*args)
        assert code == 2 and "client.crt" in err and "client certificate" in err, (args, err)
    code, err = run_process(
        "agent", flag, f"--webhook-secret-file={secret_file}", "--listen=127.0.0.1:0"
    )
    assert code == 2 and "client.crt" in err and "Traceback" not in err, err
