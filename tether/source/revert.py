"""The files that put an app's path back as it was at an earlier commit: a revert's content.

Both commits' trees come from the cache (``fetch`` extracts each commit once); the revert is
the set of files under the app's path that differ between them, each with its content at the
good commit (None: the good commit did not have it, so the revert deletes it). Only that path
is reverted: other apps' changes made between the two commits stay.
"""

from __future__ import annotations

from pathlib import Path

from tether.core.repopath import normal_path


def restoring_files(good_root: Path, bad_root: Path, path: str) -> list[tuple[str, bytes | None]]:
    """``(repository path, content at the good commit or None)`` for every regular file under
    ``path`` that differs between the two trees, sorted by path."""
    base = normal_path(path)
    good, bad = _files(good_root, base), _files(bad_root, base)
    changes: list[tuple[str, bytes | None]] = []
    for name in sorted(set(good) | set(bad)):
        before = good[name].read_bytes() if name in good else None
        after = bad[name].read_bytes() if name in bad else None
        if before != after:
            changes.append((name, before))
    return changes


def _files(root: Path, base: str) -> dict[str, Path]:
    """Regular files under ``root/base``, by their path from ``root`` (symlinks left out: a
    forge's file API cannot write them)."""
    top = root if base in ("", ".") else root / base
    if not top.is_dir():
        return {}
    return {
        file.relative_to(root).as_posix(): file
        for file in top.rglob("*")
        if file.is_file() and not file.is_symlink() and ".git" not in file.relative_to(root).parts
    }
