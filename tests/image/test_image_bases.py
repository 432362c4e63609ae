"""``scripts/image-bases``, which ``scripts/build-image`` runs once a base is in place: the shared
base cache loses only the base a checkout replaced, and only when no other checkout uses it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.image.conftest import ROOT

OLD = "tether-agent-base:bookworm-" + "a" * 16
NEW = "tether-agent-base:bookworm-" + "b" * 16
NEWER = "tether-agent-base:bookworm-" + "c" * 16
FOREIGN = "tether-agent-base:bookworm-" + "d" * 16


def archive(base_dir: Path, name: str) -> Path:
    return base_dir / f"{name.replace(':', '-')}.oci.tar"


def adopt(base_dir: Path, checkout: Path, name: str) -> list[str]:
    """The base names the script says were replaced and removed."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "image-bases"), "adopt", str(base_dir), str(checkout), name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    """A shared base cache holding four archives, one of them no checkout ever recorded."""
    directory = tmp_path / "images" / "base"
    directory.mkdir(parents=True)
    for name in (OLD, NEW, NEWER, FOREIGN):
        archive(directory, name).write_bytes(b"an OCI archive")
    return directory


def checkout(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def test_a_new_base_removes_only_the_one_this_checkout_used_before(
    base_dir: Path, tmp_path: Path
) -> None:
    mine = checkout(tmp_path, "main")
    assert adopt(base_dir, mine, OLD) == []
    assert adopt(base_dir, mine, OLD) == []  # the same base again replaces nothing
    assert adopt(base_dir, mine, NEW) == [OLD]
    assert not archive(base_dir, OLD).exists()
    assert {path.name for path in base_dir.glob("*.oci.tar")} == {
        archive(base_dir, name).name for name in (NEW, NEWER, FOREIGN)
    }


def test_a_base_another_checkout_uses_stays(base_dir: Path, tmp_path: Path) -> None:
    mine, theirs = checkout(tmp_path, "main"), checkout(tmp_path, "worktree")
    adopt(base_dir, mine, OLD)
    adopt(base_dir, theirs, OLD)
    assert adopt(base_dir, mine, NEW) == []
    assert archive(base_dir, OLD).exists()
    # Once the other checkout moves on too, the base is its to remove.
    assert adopt(base_dir, theirs, NEWER) == [OLD]
    assert not archive(base_dir, OLD).exists()
    assert archive(base_dir, NEW).exists() and archive(base_dir, FOREIGN).exists()


def test_a_checkout_that_is_gone_keeps_nothing_alive(base_dir: Path, tmp_path: Path) -> None:
    mine, gone = checkout(tmp_path, "main"), checkout(tmp_path, "deleted-worktree")
    adopt(base_dir, mine, OLD)
    adopt(base_dir, gone, OLD)
    gone.rmdir()
    assert adopt(base_dir, mine, NEW) == [OLD]
    assert not archive(base_dir, OLD).exists()


def test_a_name_that_is_not_a_base_is_refused(base_dir: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "image-bases"), "adopt", str(base_dir), str(tmp_path), "../x:y"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "../x:y is not an agent base name" in result.stderr
    assert len(list(base_dir.glob("*.oci.tar"))) == 4
