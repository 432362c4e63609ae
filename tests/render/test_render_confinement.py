"""Nothing outside the repository tree is read: not through paths, not through symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.render.helpers import configmap, render_error, write
from tether.core import SourceLocation
from tether.errors import RenderError
from tether.render import render


def test_symlink_to_a_file_outside_is_refused(repo: Path, tmp_path: Path) -> None:
    secret = write(tmp_path, "outside/secret.yaml", configmap("stolen"))
    write(repo, "apps/ok.yaml", configmap("ok"))
    (repo / "apps" / "link.yaml").symlink_to(secret)
    message = render_error(repo, "apps")
    assert "apps/link.yaml: symlink points outside the repository" in message
    assert str(secret) in message
    assert "stolen" not in message


def test_symlink_to_a_file_inside_is_followed(repo: Path) -> None:
    write(repo, "shared/cm.yaml", configmap("shared"))
    (repo / "apps").mkdir()
    (repo / "apps" / "cm.yaml").symlink_to("../shared/cm.yaml")
    [manifest] = render(repo, "apps")
    assert manifest.ref.name == "shared"
    assert manifest.source == SourceLocation("apps/cm.yaml", 1)


def test_symlinked_directory_outside_is_refused(repo: Path, tmp_path: Path) -> None:
    write(tmp_path, "elsewhere/cm.yaml", configmap("elsewhere"))
    (repo / "apps").mkdir()
    (repo / "apps" / "vendor").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    message = render_error(repo, "apps")
    assert "apps/vendor: symlink points outside the repository" in message
    assert str(tmp_path / "elsewhere") in message


def test_symlinked_directory_inside_is_followed(repo: Path) -> None:
    write(repo, "lib/cm.yaml", configmap("lib"))
    (repo / "apps").mkdir()
    (repo / "apps" / "lib").symlink_to("../lib", target_is_directory=True)
    [manifest] = render(repo, "apps")
    assert manifest.source == SourceLocation("apps/lib/cm.yaml", 1)


def test_symlink_loop_is_reported(repo: Path) -> None:
    write(repo, "apps/cm.yaml", configmap("cm"))
    (repo / "apps" / "again").symlink_to(".", target_is_directory=True)
    message = render_error(repo, "apps")
    assert "apps/again: symlink loops back to apps" in message


def test_dangling_symlink_is_reported(repo: Path) -> None:
    (repo / "gone.yaml").symlink_to("nowhere.yaml")
    assert "gone.yaml: symlink points to nowhere.yaml, which does not exist" in render_error(repo)


@pytest.mark.parametrize("path", ["..", "apps/../..", "../repo-sibling", "apps/../apps"])
def test_path_with_a_parent_segment_is_refused(repo: Path, path: str) -> None:
    (repo.parent / "repo-sibling").mkdir()
    write(repo.parent, "repo-sibling/cm.yaml", configmap("x"))
    (repo / "apps").mkdir()
    with pytest.raises(RenderError, match=r"is refused: it has a '\.\.' segment"):
        render(repo, path)


def test_path_that_is_a_symlink_leaving_the_root_is_refused(repo: Path, tmp_path: Path) -> None:
    write(tmp_path, "elsewhere/cm.yaml", configmap("elsewhere"))
    (repo / "apps").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(RenderError, match=f"path 'apps' leaves the repository .*{tmp_path}"):
        render(repo, "apps")


def test_absolute_path_is_refused(repo: Path) -> None:
    with pytest.raises(RenderError, match="is refused: it is absolute"):
        render(repo, str(repo))


def test_missing_path(repo: Path) -> None:
    with pytest.raises(RenderError, match="path 'nope' does not exist in the repository"):
        render(repo, "nope")


def test_root_reached_through_a_symlink(tmp_path: Path, repo: Path) -> None:
    write(repo, "apps/cm.yaml", configmap("cm"))
    alias = tmp_path / "alias"
    alias.symlink_to(repo, target_is_directory=True)
    [manifest] = render(alias, "apps")
    assert manifest.source == SourceLocation("apps/cm.yaml", 1)


def test_special_files_are_not_read(repo: Path) -> None:
    os.mkfifo(repo / "pipe.yaml")
    assert "pipe.yaml: not a regular file" in render_error(repo)
