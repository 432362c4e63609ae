"""The cache's bare mirror of one remote: created once, updated on every fetch, locked while used.

Layout under the cache directory::

    repos/<slug>-<hash>.git     bare mirror: refs/heads/* and refs/tags/* as the remote has them
    repos/<slug>-<hash>.lock    flock'd by whoever is fetching into or reading from the mirror

Only the mirror is ever written. A local source is read through ``git fetch`` (upload-pack),
which never modifies the repository it reads from.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tether.source.git import Git, GitError

HEADS_AND_TAGS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
PINNED_PREFIX = "refs/tether/commits/"
_FETCH_FLAGS = ("fetch", "--quiet", "--no-tags", "--no-write-fetch-head")
_LOCK_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class RemoteHead:
    """What the remote's HEAD is: a branch name (None when detached) and its commit."""

    branch: str | None
    commit: str | None


class Mirror:
    """A bare mirror of ``git.remote`` at ``path``."""

    def __init__(self, path: Path, git: Git) -> None:
        self.path = path
        self.git = git

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this mirror's lock (waiting at most until the deadline)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._acquire(fd)
            yield
        finally:
            os.close(fd)

    def _acquire(self, fd: int) -> None:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if self.git.deadline.expired:
                    raise GitError(
                        f"another fetch held the cache lock {self.path.with_suffix('.lock')} "
                        f"for more than {self.git.deadline.seconds:g}s",
                        remote=False,
                        timed_out=True,
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)

    def update(self) -> None:
        """Create the mirror if needed and bring its heads and tags in line with the remote."""
        created = self._ensure()
        try:
            self._fetch(*HEADS_AND_TAGS, prune=True)
        except GitError:
            if created:
                shutil.rmtree(self.path, ignore_errors=True)
            raise

    def fetch_ref(self, ref: str) -> None:
        """Fetch one ref outside heads and tags (``refs/pull/1/head``) under its own name."""
        self._fetch(f"+{ref}:{ref}")

    def fetch_commit(self, commit: str) -> None:
        """Fetch a commit by its full SHA (servers may refuse if no ref points at it)."""
        self._ensure()
        self._fetch(f"+{commit}:{PINNED_PREFIX}{commit}")

    def _fetch(self, *refspecs: str, prune: bool = False) -> None:
        flags = (*_FETCH_FLAGS, "--prune") if prune else _FETCH_FLAGS
        location = self.git.remote.location
        self.git.run(*flags, "--", location, *refspecs, git_dir=self.path, network=True)

    def _ensure(self) -> bool:
        """Create an empty bare mirror unless one exists; True when it was just created."""
        if (self.path / "HEAD").is_file():
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=".init-", dir=self.path.parent))
        try:
            self.git.run("init", "--quiet", "--bare", "--initial-branch=main", str(staging))
            (staging / "description").write_text(f"tether mirror of {self.git.remote.display}\n")
            staging.rename(self.path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return True

    def remote_head(self) -> RemoteHead:
        """Ask the remote which branch its HEAD names (``git ls-remote --symref``)."""
        out = self.git.run(
            "ls-remote", "--symref", "--", self.git.remote.location, "HEAD", network=True
        )
        branch = commit = None
        for line in out.decode(errors="replace").splitlines():
            target, _, name = line.partition("\t")
            if name != "HEAD":
                continue
            if target.startswith("ref: refs/heads/"):
                branch = target.removeprefix("ref: refs/heads/")
            else:
                commit = target
        return RemoteHead(branch, commit)

    def lookup(self, revisions: list[str]) -> str | None:
        """The commit the first resolvable of ``revisions`` names (peeling tags), or None."""
        if not (self.path / "HEAD").is_file():
            return None
        stdin = "".join(f"{rev}^{{commit}}\n" for rev in revisions).encode()
        out = self.git.run(
            "cat-file", "--batch-check=%(objectname)", git_dir=self.path, stdin=stdin
        )
        for line in out.decode().splitlines():
            if " " not in line:
                return line
        return None

    def ref_names(self, namespace: str) -> list[str]:
        """Short names under ``refs/heads`` or ``refs/tags``, most recent first."""
        if not (self.path / "HEAD").is_file():
            return []
        out = self.git.run(
            "for-each-ref",
            "--sort=-creatordate",
            "--format=%(refname)",
            f"refs/{namespace}/",
            git_dir=self.path,
        )
        prefix = f"refs/{namespace}/"
        return [line.removeprefix(prefix) for line in out.decode(errors="replace").splitlines()]

    def describe(self, commit: str) -> tuple[str, str]:
        """``("Name <email>", subject)`` of a commit."""
        out = self.git.run(
            "show",
            "-s",
            "--no-show-signature",
            "--format=%an <%ae>%x00%s",
            commit,
            "--",
            git_dir=self.path,
        )
        author, _, subject = out.decode(errors="replace").rstrip("\n").partition("\0")
        return author, subject
