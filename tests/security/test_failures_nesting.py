"""Issue #12, "Why": about 990 levels of YAML nesting raised RecursionError (low), and YAML
alias bombs expanded while Tether walked them (high; the loader's half). Through ``tether
sync``, ``diff``, ``lint``, ``secrets decrypt`` and a real agent, each is a clean refusal that
names the file and the limit, and nothing else breaks."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.agent.conftest import app_condition, apply_yaml, source_and_app, wait_for
from tests.conftest import Cli, GitRepo, Kubectl
from tether.cli.main import app

LEVELS = 990
DEEP_YAML = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  a: "
    + "[" * LEVELS
    + "]" * LEVELS
    + "\n"
)
DEEP_BLOCK = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: block\n" + "".join(
    "  " * i + f"k{i}:\n" for i in range(LEVELS)
)
DEEP_JSON = (
    '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deepj"}, "x": '
    + "[" * LEVELS
    + "]" * LEVELS
    + "}"
)
BOMB = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n  a: &a [x,x,x,x,x,x,x,x,x]\n"
    + "".join(
        f"  {n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
)
HOSTILE = {
    "deep.yaml": ("max_depth", DEEP_YAML),
    "block.yaml": ("max_depth", DEEP_BLOCK),
    "deepj.json": ("max_depth", DEEP_JSON),
    "bomb.yaml": ("alias", BOMB),
}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    assert not result.exception or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_sync_and_diff_refuse_hostile_yaml_naming_file_and_limit(
    cli: Cli, repo: GitRepo, namespace: str, name: str
) -> None:
    limit, text = HOSTILE[name]
    repo.write(name, text).commit("hostile")
    for command in ("sync", "diff"):
        code, out, err = cli(command, "--source", str(repo.root), "--app", "web", "-n", namespace)
        assert code == 2, (command, out, err)
        assert name in err and limit in err and "Recursion" not in err, err


def test_lint_reports_hostile_yaml_and_keeps_going(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    base = root / "apps" / "web" / "base"
    base.mkdir(parents=True)
    for name, (_, text) in HOSTILE.items():
        (base / name).write_text(text)
    # A JWT-shaped token whose header is 1000 levels deep, for the secret scan.
    header = base64.urlsafe_b64encode(b'{"a":' * 1000).decode().rstrip("=")
    (base / "token.txt").write_text(f"token: {header}.eyJhIjoxfQ.c2ln\n")
    code, out = invoke("lint", str(root), "-o", "json")
    assert code == 1, out
    text = json.dumps(json.loads(out))
    for name, (limit, _) in HOSTILE.items():
        assert name in text and limit in text, name


def test_lint_refuses_a_deep_tether_yaml(tmp_path: Path) -> None:
    (tmp_path / "tether.yaml").write_text("environments: " + "[" * LEVELS + "]" * LEVELS + "\n")
    code, out = invoke("lint", str(tmp_path))
    assert code == 2 and "tether.yaml" in out and "max_depth" in out, out


def test_sops_files_nested_too_deep_are_refused_by_name(tmp_path: Path) -> None:
    deep_json = tmp_path / "deep.json"
    deep_json.write_text('{"a": ' + "[" * LEVELS + "]" * LEVELS + "}")
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("a: " + "[" * LEVELS + "]" * LEVELS + "\n")
    for path in (deep_json, deep_yaml):
        code, out = invoke("secrets", "decrypt", str(path))
        assert code == 2 and path.name in out and "128" in out and "Recursion" not in out, out


def test_the_agent_reports_hostile_yaml_on_the_app_and_keeps_serving(
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    start_agent,
) -> None:
    repo.write("deep.yaml", DEEP_YAML).write("bomb.yaml", BOMB).commit("hostile")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    agent = start_agent()
    ready = wait_for(
        lambda: (
            (c := app_condition(kubectl, namespace, "web", "Ready"))
            and c["status"] == "False"
            and c
        ),
        60,
        "the App to report the refusal",
    )
    assert "max_depth" in ready["message"] or "alias" in ready["message"], ready
    assert "deep.yaml" in ready["message"] or "bomb.yaml" in ready["message"], ready
    assert agent.healthy()
    assert "RecursionError" not in agent.log.read_text()
