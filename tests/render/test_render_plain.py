"""Plain directories: every YAML/JSON file under the path, in path order, with file:line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.render.helpers import configmap, render_error, write
from tether.core import Manifest, ObjectRef, SourceLocation
from tether.render import RenderSettings, render


def names(manifests: list[Manifest]) -> list[str]:
    return [m.ref.name for m in manifests]


def test_recursive_multi_document_in_path_order(repo: Path) -> None:
    write(repo, "apps/b.yaml", configmap("b1") + "---\n" + configmap("b2"))
    write(repo, "apps/a.yml", configmap("a"))
    write(repo, "apps/sub/c.yaml", configmap("c"))
    write(repo, "apps/z.yaml", configmap("z"))
    write(repo, "apps/README.md", "not yaml: [")
    write(repo, "apps/notes.txt", "kind: nothing")

    manifests = render(repo, "apps")

    assert names(manifests) == ["a", "b1", "b2", "c", "z"]
    assert [str(m.source) for m in manifests] == [
        "apps/a.yml:1",
        "apps/b.yaml:1",
        "apps/b.yaml:8",
        "apps/sub/c.yaml:1",
        "apps/z.yaml:1",
    ]


def test_render_of_the_root_uses_paths_relative_to_it(repo: Path) -> None:
    write(repo, "x/cm.yaml", configmap("cm"))
    [manifest] = render(repo)
    assert manifest.source == SourceLocation("x/cm.yaml", 1)
    assert manifest.body == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm"},
        "data": {"key": "value"},
    }


def test_path_may_be_a_single_file(repo: Path) -> None:
    write(repo, "apps/cm.yaml", configmap("one"))
    write(repo, "apps/other.yaml", configmap("two"))
    assert names(render(repo, "apps/cm.yaml")) == ["one"]


def test_hidden_files_and_directories_are_skipped(repo: Path) -> None:
    write(repo, "cm.yaml", configmap("visible"))
    write(repo, ".github/workflows/ci.yaml", "on: push\njobs: {}\n")
    write(repo, ".git/config.yaml", "nonsense: [")
    write(repo, ".hidden.yaml", "nonsense: [")
    assert names(render(repo)) == ["visible"]


def test_empty_documents_and_comments_are_ignored(repo: Path) -> None:
    write(
        repo,
        "cm.yaml",
        "---\n# just a comment\n---\n\n---\n" + configmap("only") + "---\n...\n",
    )
    write(repo, "empty.yaml", "")
    write(repo, "comments.yml", "# nothing here\n")
    assert names(render(repo)) == ["only"]


def test_line_of_the_third_document(repo: Path) -> None:
    text = (
        "# leading comment\n"  # 1
        + configmap("first")  # 2-7
        + "---\n"  # 8
        + configmap("second")  # 9-14
        + "---\n"  # 15
        + "# about the third\n"  # 16
        + configmap("third")  # 17-22
    )
    write(repo, "many.yaml", text)
    manifests = render(repo)
    assert [m.source.line for m in manifests] == [2, 9, 17]
    assert manifests[2].source == SourceLocation("many.yaml", 17)


def test_list_kinds_are_expanded_with_item_lines(repo: Path) -> None:
    write(
        repo,
        "list.yaml",
        """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: ConfigMap
          metadata:
            name: one
        - apiVersion: v1
          kind: Secret
          metadata:
            name: two
        ---
        apiVersion: v1
        kind: ConfigMapList
        items: []
        """,
    )
    manifests = render(repo)
    assert [(m.kind, m.ref.name, m.source.line) for m in manifests] == [
        ("ConfigMap", "one", 4),
        ("Secret", "two", 8),
    ]


def test_json_object_and_json_list(repo: Path) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-json"}}
    write(repo, "a.json", json.dumps(cm, indent=2))
    items = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}"}} for i in range(2)
    ]
    write(
        repo, "b.json", json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2)
    )
    manifests = render(repo)
    assert [(m.kind, m.ref.name) for m in manifests] == [
        ("ConfigMap", "from-json"),
        ("Secret", "s0"),
        ("Secret", "s1"),
    ]
    assert manifests[0].source == SourceLocation("a.json", 1)
    # {, apiVersion, kind, items: [, then each item's "{" (7 lines per item)
    assert [m.source for m in manifests[1:]] == [
        SourceLocation("b.json", 5),
        SourceLocation("b.json", 12),
    ]


def test_json_numbers_stay_numbers(repo: Path) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "x": 1e5}
    write(repo, "n.json", json.dumps(body))
    [manifest] = render(repo)
    assert manifest.body["x"] == 100000.0


def test_dates_stay_strings_and_yaml_anchors_work(repo: Path) -> None:
    write(
        repo,
        "cm.yaml",
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: dated
          labels: &labels
            app: web
          annotations:
            <<: *labels
            released: 2024-01-31
        data:
          when: 2024-01-31T10:00:00Z
        """,
    )
    [manifest] = render(repo)
    assert manifest.body["metadata"]["annotations"] == {"app": "web", "released": "2024-01-31"}
    assert manifest.body["data"]["when"] == "2024-01-31T10:00:00Z"


def test_same_name_in_other_namespace_or_kind_is_fine(repo: Path) -> None:
    write(repo, "a.yaml", configmap("same", "one"))
    write(repo, "b.yaml", configmap("same", "two"))
    write(repo, "c.yaml", configmap("same"))
    write(
        repo,
        "d.yaml",
        """
        apiVersion: v1
        kind: Secret
        metadata:
          name: same
          namespace: one
        """,
    )
    refs = [m.ref for m in render(repo)]
    assert refs == [
        ObjectRef("", "ConfigMap", "one", "same"),
        ObjectRef("", "ConfigMap", "two", "same"),
        ObjectRef("", "ConfigMap", "", "same"),
        ObjectRef("", "Secret", "one", "same"),
    ]


def test_empty_directory_renders_nothing(repo: Path) -> None:
    (repo / "empty").mkdir()
    assert render(repo, "empty") == []


def test_a_kustomization_is_an_error_without_a_kustomize_binary(repo: Path) -> None:
    write(repo, "app/kustomization.yaml", "resources: [cm.yaml]\n")
    write(repo, "app/cm.yaml", configmap("cm"))
    message = render_error(repo, "app", RenderSettings(kustomize=None))
    assert "app/kustomization.yaml" in message
    assert "no kustomize binary is configured" in message


def test_a_thousand_manifests(repo: Path) -> None:
    one_file = "---\n".join(configmap(f"cm-{i:04}") for i in range(1000))
    write(repo, "big/all.yaml", one_file)
    for i in range(1000):
        write(repo, f"many/cm-{i:04}.yaml", configmap(f"cm-{i:04}"))

    from_one_file = render(repo, "big")
    from_many_files = render(repo, "many")

    assert len(from_one_file) == len(from_many_files) == 1000
    assert names(from_one_file) == names(from_many_files)
    assert from_one_file[999].source == SourceLocation("big/all.yaml", 999 * 7 + 1)
    assert from_many_files[999].source == SourceLocation("many/cm-0999.yaml", 1)
