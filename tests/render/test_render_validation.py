"""Broken input: every problem named with file:line, all of them in one RenderError."""

from __future__ import annotations

from pathlib import Path

from tests.render.helpers import configmap, render_error, write


def test_malformed_yaml_names_file_line_and_column(repo: Path) -> None:
    write(repo, "apps/ok.yaml", configmap("ok"))
    write(
        repo,
        "apps/bad.yaml",
        configmap("first")
        + "---\n"  # line 7
        + "apiVersion: v1\n"
        + "kind: ConfigMap\n"
        + "metadata:\n"
        + "  name: broken\n"
        + "  labels: a: b\n",  # line 12, column 12
    )
    message = render_error(repo, "apps")
    assert message.startswith("cannot render 'apps': ")
    assert "apps/bad.yaml:12:12: invalid YAML: mapping values are not allowed" in message


def test_unclosed_flow_names_where_it_started(repo: Path) -> None:
    write(repo, "bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    message = render_error(repo)
    assert "bad.yaml:4:1: invalid YAML:" in message
    assert "at line 3" in message


def test_missing_kind_api_version_and_name_are_named(repo: Path) -> None:
    write(
        repo,
        "objects.yaml",
        """
        apiVersion: v1
        metadata:
          name: no-kind
        ---
        kind: ConfigMap
        metadata:
          name: no-api-version
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          labels: {a: b}
        ---
        just: a mapping
        """,
    )
    message = render_error(repo)
    assert "4 problems" in message
    assert "objects.yaml:1: object 'no-kind': missing kind" in message
    assert "objects.yaml:5: ConfigMap 'no-api-version': missing apiVersion" in message
    assert "objects.yaml:9: ConfigMap: missing metadata.name" in message
    assert "objects.yaml:14: missing apiVersion, kind, metadata.name" in message


def test_yaml_without_kubernetes_fields_is_not_silently_skipped(repo: Path) -> None:
    write(repo, "values.yaml", "replicaCount: 3\nimage: nginx\n")
    message = render_error(repo)
    assert "values.yaml:1: missing apiVersion, kind, metadata.name" in message


def test_documents_that_are_not_mappings(repo: Path) -> None:
    write(repo, "list.yaml", "- a\n- b\n---\njust a string\n")
    message = render_error(repo)
    assert "list.yaml:1: a list is not a Kubernetes object" in message
    assert "list.yaml:4: a string is not a Kubernetes object" in message


def test_generate_name_is_refused(repo: Path) -> None:
    write(
        repo,
        "job.yaml",
        """
        apiVersion: batch/v1
        kind: Job
        metadata:
          generateName: migrate-
        """,
    )
    message = render_error(repo)
    assert "job.yaml:1: Job: metadata.generateName is not supported" in message
    assert "set metadata.name" in message


def test_non_string_fields(repo: Path) -> None:
    write(
        repo,
        "odd.yaml",
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: 123
          namespace: 7
        """,
    )
    message = render_error(repo)
    assert 'metadata.name must be a string (quote it: name: "123")' in message
    assert "metadata.namespace must be a string" in message


def test_duplicate_identity_across_files_names_both(repo: Path) -> None:
    write(repo, "a/first.yaml", configmap("other") + "---\n" + configmap("twin", "prod"))
    write(
        repo,
        "b/second.yaml",
        # same group/kind/namespace/name, different version: still the same object
        configmap("twin", "prod").replace("apiVersion: v1", "apiVersion: v2"),
    )
    message = render_error(repo)
    assert "ConfigMap/prod/twin is defined twice" in message
    assert "b/second.yaml:1" in message
    assert "a/first.yaml:8" in message


def test_duplicate_key_in_a_mapping(repo: Path) -> None:
    write(repo, "dup.yaml", configmap("x") + "data:\n  other: 1\n")
    message = render_error(repo)
    assert "dup.yaml:7:1: invalid YAML: found duplicate key 'data'" in message


def test_tags_read_as_kubectl_reads_them(repo: Path) -> None:
    # kubectl decodes !!binary and drops a tag it does not know; a tag a value does not fit is
    # refused by both (see tests/render/test_yaml_kubectl.py for the whole corpus).
    write(repo, "bin.yaml", configmap("x").replace("key: value", "key: !!binary aGVsbG8="))
    write(repo, "custom.yaml", configmap("c").replace("key: value", "key: !vault secret"))
    write(repo, "bad.yaml", configmap("b").replace("key: value", "key: !!int abc"))
    message = render_error(repo)
    assert "bad.yaml:6:8: cannot decode !!str `abc` as a !!int" in message
    assert "bin.yaml" not in message
    assert "custom.yaml" not in message


def test_invalid_json(repo: Path) -> None:
    write(repo, "bad.json", '{\n  "apiVersion": "v1",\n  "kind": \n}\n')
    write(repo, "dup.json", '{"kind": "A", "kind": "B"}')
    message = render_error(repo)
    assert "bad.json:4:1: invalid JSON: Expecting value" in message
    assert "dup.json: invalid JSON: duplicate key 'kind'" in message


def test_not_utf8(repo: Path) -> None:
    (repo / "latin1.yaml").write_bytes(b"apiVersion: v1\nkind: ConfigMap\n# caf\xe9\n")
    assert "latin1.yaml: not UTF-8 text" in render_error(repo)


def test_control_characters(repo: Path) -> None:
    (repo / "nul.yaml").write_bytes(b"apiVersion: v1\nkind: \x00\n")
    assert "nul.yaml:2:7: invalid YAML: unacceptable character" in render_error(repo)


def test_all_problems_are_collected_into_one_error(repo: Path) -> None:
    for i in range(30):
        write(repo, f"bad-{i:02}.yaml", f"kind: ConfigMap\nmetadata: {{name: x{i}}}\n")
    message = render_error(repo)
    lines = message.splitlines()
    assert lines[0] == "cannot render '.': 30 problems"
    assert lines[1] == "  bad-00.yaml:1: ConfigMap 'x0': missing apiVersion"
    assert len(lines) == 1 + 20 + 1
    assert lines[-1] == "  ... and 10 more"


def test_problems_of_every_kind_in_one_error(repo: Path) -> None:
    write(repo, "a.yaml", "a: [\n")
    write(repo, "b.yaml", "kind: X\nmetadata: {name: b}\n")
    write(repo, "c.yaml", configmap("c"))
    write(repo, "d.yaml", configmap("c"))
    message = render_error(repo)
    assert "3 problems" in message
    assert "a.yaml:2:1" in message
    assert "b.yaml:1" in message
    assert "d.yaml:1: ConfigMap/c is defined twice, here and at c.yaml:1" in message
