"""Extraction refuses trees that could escape their directory; crafted with real git objects."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.source.gitrepo import Origin
from tether.errors import SourceError
from tether.source import fetch
from tether.source.extract import Entry, check_tree

BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def entry(path: str, mode: int = 0o100644) -> Entry:
    return Entry(mode, BLOB, path.encode())


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([entry("../escape")], "unsafe path"),
        ([entry("a/./b")], "unsafe path"),
        ([entry(".git/config")], "unsafe path"),
        ([entry("sub/.GIT/hooks/post-checkout")], "unsafe path"),
        ([entry("a//b")], "unsafe path"),
        ([entry("dup"), entry("dup")], "appears twice"),
        ([entry("link", 0o120000), entry("link/passwd")], "below a file or symlink"),
        ([entry("file"), entry("file/inner")], "below a file or symlink"),
        ([entry("weird", 0o140000)], "unsupported mode"),
    ],
)
def test_check_tree_refuses(entries: list[Entry], problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        check_tree(entries, "repo at abc")


def test_check_tree_accepts_a_normal_tree() -> None:
    check_tree(
        [entry("a/b.yaml"), entry("a/c", 0o100755), entry("l", 0o120000), entry("m", 0o160000)],
        "repo at abc",
    )


def _object(origin: Origin, kind: str, body: bytes) -> str:
    result = subprocess.run(
        ["git", "hash-object", "-t", kind, "--literally", "-w", "--stdin"],
        cwd=origin.path,
        input=body,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().strip()


def _tree(origin: Origin, entries: list[tuple[str, bytes, str]]) -> str:
    body = b"".join(
        mode.encode() + b" " + name + b"\0" + bytes.fromhex(oid) for mode, name, oid in entries
    )
    return _object(origin, "tree", body)


def _crafted_commit(origin: Origin, name: bytes) -> str:
    blob = _object(origin, "blob", b"pwned\n")
    inner = _tree(origin, [("100644", b"config", blob)])
    root = _tree(origin, [("100644", b"ok.yaml", blob), ("40000", name, inner)])
    commit = origin.git("commit-tree", root, "-m", "crafted")
    origin.git("update-ref", "refs/heads/crafted", commit)
    return commit


@pytest.mark.parametrize("name", [b"..", b".git"])
def test_a_crafted_tree_is_refused_and_nothing_is_written(
    origin: Origin, cache: Path, name: bytes
) -> None:
    commit = _crafted_commit(origin, name)
    with pytest.raises(SourceError, match=f"unsafe path .* in {origin.path.resolve()} at {commit}"):
        fetch(str(origin.path), "crafted", cache_dir=cache)
    assert not (cache / "config").exists()
    assert not (cache / "artifacts").exists() or not list((cache / "artifacts").iterdir())
