"""Hostile YAML through the real entry points: a render (plain files and kustomize), ``tether
sync``, ``tether lint`` on a tether.yaml, and ``tether secrets decrypt``. Each is refused with
the file (and line) named, the limit named, and memory bounded (max RSS is only a generous
bound: under 500 MB of growth, where an alias bomb used to take gigabytes).
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import Cli, GitRepo, Kubectl
from tests.render.helpers import configmap, render_error, write
from tether.cli.main import app
from tether.core.kubeyaml import YamlLimits
from tether.render import RenderSettings, render

GROWTH_BOUND_KB = 500 * 1024


def alias_bomb(levels: int = 9) -> str:
    """The classic "billion laughs": nine nested anchors, 9**9 strings once expanded (~1 KB)."""
    lines = ['  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"  a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def bomb_configmap(name: str = "bomb") -> str:
    """A ConfigMap whose ``data`` hides an alias bomb (lines 5-13)."""
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\nbomb:\n" + alias_bomb()


@pytest.fixture
def memory() -> Iterator[None]:
    """Fails the test when the process's max RSS grew by more than the bound during it."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < GROWTH_BOUND_KB, f"max RSS grew by {grown} KB"


HOSTILE = {
    "bomb.yaml": (bomb_configmap(), "bomb.yaml:9:37:", "alias bomb"),
    "deep.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata: " + "[" * 990 + "\n",
        "deep.yaml:5:",
        "YamlLimits.max_depth",
    ),
    "deep-block.yaml": (
        "".join("  " * depth + f"k{depth}:\n" for depth in range(3000)),
        "deep-block.yaml:129:",
        "YamlLimits.max_depth",
    ),
    "huge.yaml": (
        configmap("huge") + "".join(f"  key{index}: {'x' * 80}\n" for index in range(110_000)),
        "huge.yaml:",
        "YamlLimits.max_document_chars",
    ),
    "many.yaml": ("---\na: 1\n" * 10_001, "many.yaml:20001:", "YamlLimits.max_documents"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_manifest_is_refused_with_file_line_and_limit(
    repo: Path, name: str, memory: None
) -> None:
    text, where, limit = HOSTILE[name]
    write(repo, f"apps/{name}", text)
    message = render_error(repo, "apps")
    assert where in message
    assert limit in message


def test_deep_or_large_json_is_refused_too(repo: Path, memory: None) -> None:
    write(repo, "deep.json", '{"a": ' * 5000 + "1" + "}" * 5000)
    write(
        repo, "floats.json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f"}}'
    )
    message = render_error(repo)
    assert "deep.json: JSON nested deeper than 128 levels (YamlLimits.max_depth)" in message
    assert "floats.json" not in message


def test_limits_come_from_the_render_settings(repo: Path) -> None:
    write(repo, "a.yaml", configmap("a"))
    settings = RenderSettings(yaml_limits=YamlLimits(max_depth=1))
    assert "a.yaml:4:3: nesting deeper than 1 levels" in render_error(repo, ".", settings)


def test_prometheus_sized_crd_renders(repo: Path) -> None:
    """A CRD as large as the Prometheus operator's (~800 KB, nesting ~30) is within the limits."""
    write(repo, "crd.yaml", big_crd(800_000))
    manifests = render(repo)
    assert manifests[0].ref.kind == "CustomResourceDefinition"
    schema = manifests[0].body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["x-field-0"]["enum"] == ["=", "<", True, "2024-01-01"]


def big_crd(size: int) -> str:
    """A CRD whose schema nests 30 levels, then long described fields up to ``size`` bytes."""
    lines = [
        "apiVersion: apiextensions.k8s.io/v1",
        "kind: CustomResourceDefinition",
        "metadata:",
        "  name: things.example.com",
        "spec:",
        "  group: example.com",
        "  names: {kind: Thing, plural: things}",
        "  scope: Namespaced",
        "  versions:",
        "  - name: v1",
        "    served: true",
        "    storage: true",
        "    schema:",
        "      openAPIV3Schema:",
    ]
    indent = "        "
    for depth in range(30):
        lines += [f"{indent}type: object", f"{indent}properties:", f"{indent}  level{depth}:"]
        indent += "    "
    lines.append(f"{indent}type: string")
    text = "\n".join(lines) + "\n"
    fields: list[str] = []
    while len(text) + 400 * len(fields) < size:
        fields.append(
            f"        x-field-{len(fields)}:\n          description: {'word ' * 60}\n"
            "          enum: [=, '<', yes, 2024-01-01]\n"
        )
    return text + "".join(fields)


# --- kustomize ------------------------------------------------------------------------------------


def test_kustomize_alias_bomb_hits_the_memory_limit(
    repo: Path, kustomize: Path, memory: None
) -> None:
    write(repo, "app/kustomization.yaml", "resources: [bomb.yaml]\n")
    write(repo, "app/bomb.yaml", bomb_configmap())
    settings = RenderSettings(kustomize=kustomize, timeout=120, kustomize_memory=1024**3)
    message = render_error(repo, "app", settings)
    assert "app/kustomization.yaml:" in message
    assert "ran out of its memory limit of 1024 MiB (RenderSettings.kustomize_memory)" in message
    assert "nothing was applied" in message


def test_kustomize_time_limit_names_the_setting(repo: Path, tmp_path: Path) -> None:
    slow = write(tmp_path, "slow/kustomize", "#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    write(repo, "app/kustomization.yaml", "resources: [cm.yaml]\n")
    write(repo, "app/cm.yaml", configmap("cm"))
    message = render_error(repo, "app", RenderSettings(kustomize=slow, timeout=0.5))
    assert "app/kustomization.yaml: kustomize build did not finish within 0.5s" in message
    assert "RenderSettings.timeout" in message


def test_kustomize_output_goes_through_the_yaml_limits(
    repo: Path, with_kustomize: RenderSettings
) -> None:
    write(repo, "app/kustomization.yaml", "resources: [cm.yaml]\n")
    write(repo, "app/cm.yaml", configmap("cm"))
    limits = YamlLimits(max_document_chars=20)
    settings = RenderSettings(kustomize=with_kustomize.kustomize, yaml_limits=limits)
    message = render_error(repo, "app", settings)
    assert "app/kustomization.yaml (kustomize output):" in message
    assert "YamlLimits.max_document_chars" in message


# --- the commands ---------------------------------------------------------------------------------


def test_lint_refuses_a_tether_yaml_bomb(tmp_path: Path, memory: None) -> None:
    root = tmp_path / "repo"
    write(
        root,
        "tether.yaml",
        "apiVersion: tether.dev/v1alpha1\nkind: Repository\nx:\n" + alias_bomb(),
    )
    result = CliRunner().invoke(app, ["lint", str(root)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "tether.yaml:7:" in result.stderr
    assert "alias bomb" in result.stderr


def test_secrets_decrypt_refuses_a_bomb(tmp_path: Path, memory: None) -> None:
    path = write(tmp_path, "secret.yaml", bomb_configmap())
    result = CliRunner().invoke(app, ["secrets", "decrypt", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert f"{path}:9:37:" in result.stderr
    assert "alias bomb" in result.stderr


@pytest.mark.cluster
def test_sync_refuses_a_bomb_and_applies_nothing(
    cli: Cli, kubectl: Kubectl, namespace: str, tmp_path: Path, memory: None
) -> None:
    source = GitRepo(tmp_path / "gitops")
    source.write("apps/web/ok.yaml", configmap("fine"))
    source.write("apps/web/bomb.yaml", bomb_configmap()).commit()
    code, _, stderr = cli(
        "sync", "--source", str(source.root), "--path", "apps/web", "--app", "web", "-n", namespace
    )
    assert code == 2
    assert "apps/web/bomb.yaml:9:37:" in stderr
    assert "alias bomb" in stderr
    assert kubectl.get("configmap", "fine", namespace) is None
