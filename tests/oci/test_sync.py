"""``tether sync`` / ``diff`` from OCI registries on the real control plane: plain manifests
pushed with ``tether push artifact``, charts pushed with the real ``helm push``; digests
recorded; a digest outside the allow-list, or a registry that is down, applies nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import Cli, Kubectl
from tests.helm.charts import helm_package, hermetic_env
from tests.oci.conftest import USER, Registry, write_manifests
from tether.devcluster.registry import running_registry


def run(cli: Cli, command: str, *args: str) -> tuple[int, dict, str]:
    code, out, err = cli(command, *args, "-o", "json")
    return code, json.loads(out) if out.strip() else {}, out + err


def login(registry: Registry) -> list[str]:
    return [
        "--repo-username", USER, "--repo-password-file", str(registry.password_file),
        "--plain-http",
    ]  # fmt: skip


def push(cli: Cli, registry: Registry, ref: str, directory: Path, revision: str = "r1") -> str:
    code, out, err = cli(
        "push", "artifact", ref, "--path", str(directory), "--source", "https://git.example/x.git",
        "--revision", revision, "--username", USER, "--password-file",
        str(registry.password_file), "--plain-http",
    )  # fmt: skip
    assert code == 0, err
    return out.strip()


def test_an_artifact_syncs_diffs_clean_and_records_its_digest(
    cli: Cli, registry: Registry, repository: str, namespace: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    write_manifests(tmp_path / "art" / "apps" / "web", name="web", data="first")
    ref = registry.ref(repository) + ":1.0.0"
    digest = push(cli, registry, ref, tmp_path / "art")
    assert digest.startswith("sha256:")
    common = ["--oci", ref, "--path", "apps/web", "--app", "web", "-n", namespace, *login(registry)]

    code, report, shown = run(cli, "sync", *common, "--timeout", "0")
    assert code == 0, shown
    assert report["revision"]["commit"] == digest
    assert report["revision"]["url"] == registry.ref(repository)
    live = kubectl.get("configmap", "web", namespace)
    assert live is not None and live["data"] == {"value": "first"}

    code, diffed, shown = run(cli, "diff", *common)
    assert code == 0, shown
    assert diffed["inSync"] is True

    code, status, shown = run(cli, "status", "web", "-n", namespace)
    assert code == 0, shown
    assert status["revision"] == digest
    assert status["syncError"] == ""
    assert [(o["name"], o["sync"]) for o in status["objects"]] == [("web", "Synced")]


def test_a_digest_not_allowed_applies_nothing(
    cli: Cli, registry: Registry, repository: str, namespace: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    write_manifests(tmp_path / "art", name="refused")
    ref = registry.ref(repository) + ":1.0.0"
    digest = push(cli, registry, ref, tmp_path / "art")
    allowed = "sha256:" + "1" * 64
    code, report, _ = run(
        cli, "sync", "--oci", ref, "--app", "refused", "-n", namespace, *login(registry),
        "--allow-digest", allowed, "--timeout", "0",
    )  # fmt: skip
    assert code == 2
    assert digest in report["error"]
    assert "not in the allowed digests" in report["error"]
    assert kubectl.get("configmap", "refused", namespace) is None


def test_a_registry_that_is_down_is_named_and_nothing_is_applied(
    cli: Cli, namespace: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    with running_registry(tmp_path / "reg") as server:
        ref = f"oci://{server.host}/down/app:1"
        code, _, err = cli(
            "push", "artifact", ref, "--path", str(write_manifests(tmp_path / "art", "down")),
            "--plain-http",
        )  # fmt: skip
        assert code == 0, err
    code, report, _ = run(
        cli, "sync", "--oci", ref, "--app", "down", "-n", namespace, "--plain-http",
        "--timeout", "0",
    )  # fmt: skip
    assert code == 2
    assert f"http://{server.host}" in report["error"]
    assert "check that the registry is running" in report["error"]
    assert kubectl.get("configmap", "down", namespace) is None


CHART = """apiVersion: v2
name: tiny
version: {version}
"""
TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-info
data:
  version: {{ .Chart.Version | quote }}
"""


def helm_push(helm: Path, registry: Registry, chart_dir: Path, version: str, into: str) -> str:
    """Package the tiny chart at ``version`` and ``helm push`` it; the digest helm prints."""
    chart = chart_dir / version
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(CHART.format(version=version))
    (chart / "templates" / "info.yaml").write_text(TEMPLATE)
    package = helm_package(helm, chart, chart_dir / "packages")
    result = subprocess.run(
        [
            str(helm), "push", str(package), f"oci://{registry.host}/{into}", "--plain-http",
            "--username", USER, "--password", registry.password,
        ],
        capture_output=True, text=True, check=True, env=hermetic_env(chart_dir),
    )  # fmt: skip
    return next(
        line.split()[-1]
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith("Digest:")
    )


def test_a_chart_from_oci_installs_diffs_clean_and_upgrades(
    cli: Cli,
    registry: Registry,
    repository: str,
    namespace: str,
    kubectl: Kubectl,
    helm: Path,
    tmp_path: Path,
) -> None:
    first = helm_push(helm, registry, tmp_path / "charts", "1.0.0", repository)
    common = [
        "--chart", f"{registry.ref(repository)}/tiny", "--version", "^1",
        "--app", "tiny", "-n", namespace, *login(registry),
    ]  # fmt: skip

    code, report, shown = run(cli, "sync", *common, "--timeout", "0")
    assert code == 0, shown
    assert report["revision"]["commit"] == first
    info = kubectl.get("configmap", "tiny-info", namespace)
    assert info is not None and info["data"] == {"version": "1.0.0"}

    code, diffed, shown = run(cli, "diff", *common)
    assert code == 0, shown
    assert diffed["inSync"] is True

    second = helm_push(helm, registry, tmp_path / "charts", "1.1.0+build.7", repository)
    helm_push(helm, registry, tmp_path / "charts", "2.0.0", repository)  # out of range
    code, report, shown = run(cli, "sync", *common, "--timeout", "0")
    assert code == 0, shown
    assert report["revision"]["commit"] == second
    info = kubectl.get("configmap", "tiny-info", namespace)
    assert info is not None and info["data"] == {"version": "1.1.0+build.7"}


def test_a_wrong_login_is_named_without_the_password_and_applies_nothing(
    cli: Cli, registry: Registry, repository: str, namespace: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    ref = registry.ref(repository) + ":1.0.0"
    push(cli, registry, ref, write_manifests(tmp_path / "art", name="locked"))
    wrong = tmp_path / "wrong-password"
    wrong.write_text("hunter2-but-longer-5150\n")
    code, report, shown = run(
        cli, "sync", "--oci", ref, "--app", "locked", "-n", namespace, "--repo-username", USER,
        "--repo-password-file", str(wrong), "--plain-http", "--timeout", "0",
    )  # fmt: skip
    assert code == 2
    assert f"registry http://{registry.host}" in report["error"]
    assert f"credentials from password file {wrong}: check the username" in report["error"]
    assert "hunter2-but-longer-5150" not in shown
    assert registry.password not in shown
    assert kubectl.get("configmap", "locked", namespace) is None
