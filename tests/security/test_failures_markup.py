"""Issue #12, "Why" (low): error text was printed as Rich markup, so a YAML tag or a kustomize
message holding ``[/]`` crashed ``sync`` and ``diff`` with exit 1. Every text is now shown as
written: a clean error (exit 2) for a refusal, the text itself for a commit subject."""

from __future__ import annotations

import json

from tests.conftest import Cli, GitRepo

TAGGED = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tagged\ndata:\n"
    "  '[/]k[bold]': 1\n  '[/]k[bold]': 2\n"
)
KUSTOMIZATION = "resources:\n  - missing[/]file[bold].yaml\n"
GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata:\n  a: '[/] x [bold]'\n"


def test_a_yaml_key_with_markup_is_a_clean_error_in_sync_and_diff(
    cli: Cli, repo: GitRepo, namespace: str
) -> None:
    repo.write("tagged.yaml", TAGGED).commit("a tag with brackets")
    for command in ("sync", "diff"):
        code, out, err = cli(command, "--source", str(repo.root), "--app", "web", "-n", namespace)
        assert code == 2, (command, out, err)
        assert "tagged.yaml" in err and "'[/]k[bold]'" in err


def test_a_kustomize_message_with_markup_is_a_clean_error(
    cli: Cli, repo: GitRepo, namespace: str
) -> None:
    repo.write("kustomization.yaml", KUSTOMIZATION).commit("a kustomization")
    code, _, err = cli("sync", "--source", str(repo.root), "--app", "web", "-n", namespace)
    assert code == 2 and "missing[/]file[bold].yaml" in err, err


def test_markup_in_a_commit_subject_and_values_is_printed_as_written(
    cli: Cli, repo: GitRepo, namespace: str
) -> None:
    repo.write("good.yaml", GOOD).commit("[bold]release[/] [/]")
    code, out, err = cli("diff", "--source", str(repo.root), "--app", "web", "-n", namespace)
    assert code == 1 and "'[/] x [bold]'" in out, err
    code, out, err = cli("sync", "--source", str(repo.root), "--app", "web", "-n", namespace)
    assert code == 0, err
    code, out, err = cli("history", "web", "-n", namespace)
    assert code == 0 and "[bold]release[/] [/]" in out, err
    code, out, _ = cli("history", "web", "-n", namespace, "-o", "json")
    assert json.loads(out)[0]["revision"]["subject"] == "[bold]release[/] [/]"
