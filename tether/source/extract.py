"""Writing the tree of one commit into an immutable directory, ``artifacts/<commit>/``.

The tree is read straight from the mirror's object store (``git ls-tree -r -z`` for the listing,
one ``git cat-file --batch`` for the contents), so the bytes are exactly the committed ones: no
``.gitattributes`` filters, line-ending conversion or ``export-ignore`` apply. Symlinks stay
symlinks (whatever they point at, the renderer judges that), the executable bit is kept, and a
submodule becomes an empty directory.

A tree from an untrusted remote is checked before anything is written: no ``..``, ``.`` or
``.git`` path components, no duplicate paths and no path below a file or symlink. Files are
created with ``O_EXCL | O_NOFOLLOW``. Everything is written to a staging directory that is renamed
into place at the end, so a crash or a concurrent fetch never leaves a half-written artifact.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tether.errors import SourceError
from tether.source.git import Git, GitError, stop

_GITLINK = 0o160000
_STALE_STAGING_SECONDS = 3600
_FORBIDDEN_COMPONENTS = (b"", b".", b"..")


@dataclass(frozen=True)
class Entry:
    """One blob, symlink or submodule of a tree, with its path from the root."""

    mode: int
    object_id: str
    path: bytes

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_submodule(self) -> bool:
        return self.mode == _GITLINK


def materialise(git: Git, mirror: Path, commit: str, artifacts: Path) -> Path:
    """The directory holding ``commit``'s tree, extracting it first unless it already exists."""
    final = artifacts / commit
    if final.is_dir():
        return final
    artifacts.mkdir(parents=True, exist_ok=True)
    entries = read_tree(git, mirror, commit)
    check_tree(entries, f"{git.remote.display} at {commit}")
    _sweep_stale_staging(artifacts)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{commit[:12]}-", dir=artifacts))
    try:
        write_tree(git, mirror, entries, staging)
        staging.chmod(0o755)
        _publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def read_tree(git: Git, mirror: Path, commit: str) -> list[Entry]:
    """Every blob and submodule under ``commit``'s root tree."""
    out = git.run("ls-tree", "-r", "-z", "--full-tree", commit, git_dir=mirror)
    entries = []
    for record in out.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            mode, _, object_id = meta.decode().split(" ")
            entries.append(Entry(int(mode, 8), object_id, path))
    return entries


def check_tree(entries: list[Entry], where: str) -> None:
    """Refuse a tree that could write outside its directory or into a ``.git`` directory."""
    leaves = {entry.path for entry in entries}
    if len(leaves) != len(entries):
        raise SourceError(f"malformed tree in {where}: a path appears twice; the remote is damaged")
    for entry in entries:
        _check_entry(entry, leaves, where)


def _check_entry(entry: Entry, leaves: set[bytes], where: str) -> None:
    parts = entry.path.split(b"/")
    shown = entry.path.decode(errors="replace")
    if any(part in _FORBIDDEN_COMPONENTS or part.lower() == b".git" for part in parts):
        raise SourceError(f"unsafe path {shown!r} in {where}: refusing to extract it")
    if any(b"/".join(parts[:depth]) in leaves for depth in range(1, len(parts))):
        raise SourceError(f"malformed tree in {where}: {shown!r} lies below a file or symlink")
    if not (stat.S_ISREG(entry.mode) or entry.is_symlink or entry.is_submodule):
        raise SourceError(f"unsupported mode {entry.mode:o} for {shown!r} in {where}")


def write_tree(git: Git, mirror: Path, entries: list[Entry], root: Path) -> None:
    """Write ``entries`` below ``root`` (an empty directory)."""
    writer = _TreeWriter(os.fsencode(root))
    blobs: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.is_submodule:
            writer.directory(entry.path)
        else:
            blobs[entry.object_id].append(entry)
    if not blobs:
        return
    proc = git.start("cat-file", "--batch", git_dir=mirror)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for object_id, users in blobs.items():
            if git.deadline.expired:
                raise GitError("extracting the tree took too long", remote=False, timed_out=True)
            data = _read_blob(proc.stdin, proc.stdout, object_id)
            for entry in users:
                writer.write(entry, data)
    finally:
        stop(proc)


def _read_blob(stdin: IO[bytes], stdout: IO[bytes], object_id: str) -> bytes:
    """One object's contents from a running ``cat-file --batch``."""
    stdin.write(object_id.encode() + b"\n")
    stdin.flush()
    header = stdout.readline().split()
    if len(header) != 3 or header[1] != b"blob":
        answer = b" ".join(header).decode(errors="replace") or "git cat-file stopped"
        raise GitError(
            f"object {object_id} could not be read from the cache ({answer})", remote=False
        )
    data = stdout.read(int(header[2]))
    stdout.read(1)
    return data


class _TreeWriter:
    """Creates files, symlinks and directories below one root, never following a symlink."""

    def __init__(self, root: bytes) -> None:
        self._root = root
        self._made: set[bytes] = {b""}

    def directory(self, path: bytes) -> None:
        if path not in self._made:
            self.directory(path.rpartition(b"/")[0])
            os.mkdir(self._root + b"/" + path)
            self._made.add(path)

    def write(self, entry: Entry, data: bytes) -> None:
        self.directory(entry.path.rpartition(b"/")[0])
        target = self._root + b"/" + entry.path
        if entry.is_symlink:
            os.symlink(data, target)
            return
        mode = 0o755 if entry.mode & stat.S_IXUSR else 0o644
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with open(fd, "wb") as file:
            os.fchmod(fd, mode)
            file.write(data)


def _publish(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final``; if another process got there first, keep theirs."""
    try:
        staging.rename(final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)


def _sweep_stale_staging(artifacts: Path) -> None:
    """Remove staging directories a crashed fetch left behind (older than an hour)."""
    cutoff = time.time() - _STALE_STAGING_SECONDS
    for candidate in artifacts.glob(".tmp-*"):
        try:
            if candidate.stat().st_mtime < cutoff:
                shutil.rmtree(candidate, ignore_errors=True)
        except FileNotFoundError:
            continue
