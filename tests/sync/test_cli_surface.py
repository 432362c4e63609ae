"""The CLI surface others script against: audit in PostgreSQL, dev-cluster commands, durations,
help texts, dry runs."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from tests.conftest import Cli, GitRepo, Kubectl
from tests.postgres import fresh_database
from tests.sync.manifests import configmap
from tether.cli.main import app
from tether.cli.parsing import parse_duration
from tether.devcluster.controlplane import DevCluster


def test_sync_records_in_postgresql_and_history_reads_it(
    cli: Cli, repo: GitRepo, namespace: str, postgres_url: str
) -> None:
    repo.write("a.yaml", configmap("pg")).commit("audited in postgres")
    with fresh_database(postgres_url, "cli_history") as url:
        code, _, err = cli(
            "sync", "--source", str(repo.root), "--app", "pg", "-n", namespace, "--db", url
        )
        assert code == 0, err
        code, out, _ = cli("history", "pg", "-n", namespace, "--db", url, "-o", "json")
    records = json.loads(out)
    assert code == 0 and len(records) == 1
    assert records[0]["revision"]["subject"] == "audited in postgres"
    assert records[0]["actor"] and records[0]["durationSeconds"] > 0
    assert "password" not in out and url.split("@")[0].split(":")[-1] not in out


def test_dry_run_writes_nothing(cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl) -> None:
    repo.write("a.yaml", configmap("dry")).commit()
    code, out, _ = cli(
        "sync",
        "--source",
        str(repo.root),
        "--app",
        "dry",
        "-n",
        namespace,
        "--dry-run",
        "-o",
        "json",
    )
    report = json.loads(out)
    assert (
        code == 0 and report["result"] == "dry-run" and report["changes"][0]["action"] == "created"
    )
    assert kubectl.get("configmap", "dry", namespace) is None
    assert kubectl.get("configmap", "dry", "tether-system") is None


def test_dev_cluster_status_and_kubeconfig(dev_cluster: DevCluster) -> None:
    status = dev_cluster.status()
    assert status["ready"] is True and all(status["components"].values())
    assert set(status["components"]) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    assert status["kubeconfig"] == str(dev_cluster.kubeconfig_path)
    runner = CliRunner()
    stopped = runner.invoke(app, ["dev-cluster", "status", "--name", "no-such-cluster"])
    assert stopped.exit_code == 1 and "not ready" in stopped.stdout
    missing = runner.invoke(app, ["dev-cluster", "kubeconfig", "--name", "no-such-cluster"])
    assert missing.exit_code == 1 and "not running" in missing.stderr


def test_kubeconfig_without_cluster_is_a_clear_error(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["sync", "--source", str(tmp_path), "--app", "x", "--kubeconfig", str(tmp_path / "none")],
    )
    assert result.exit_code == 2 and "kubeconfig" in result.stderr and "not found" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("0", 0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "m5", "1x", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "command", [["sync"], ["diff"], ["status"], ["history"], ["dev-cluster", "up"], ["demo"]]
)
def test_help_everywhere(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "Usage" in result.stdout
