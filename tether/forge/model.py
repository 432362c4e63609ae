"""The forge's vocabulary: repositories, pull requests, commit statuses, file changes.

Plain frozen dataclasses, the same whatever the forge (Gitea, GitHub, GitLab); each driver maps
its JSON to these and back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RepoRef:
    """A repository on a forge: ``owner/name``."""

    owner: str
    name: str

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> RepoRef:
        owner, slash, name = text.strip().strip("/").partition("/")
        if not slash or not owner or not name or "/" in name:
            raise ValueError(f"{text!r} is not a repository: write it as owner/name")
        return cls(owner, name.removesuffix(".git"))


class PullState(enum.Enum):
    """Where a pull request stands: merged is told apart from closed without merging."""

    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


@dataclass(frozen=True)
class PullRequest:
    """A pull request as the forge reports it now."""

    repo: RepoRef
    number: int
    url: str
    state: PullState
    head: str
    base: str
    head_sha: str
    title: str
    merge_commit: str | None = None
    """The commit the merge produced on ``base``; set only when ``state`` is MERGED."""


@dataclass(frozen=True)
class FileChange:
    """One file on the branch of a change request: its new content, or None to delete it."""

    path: str
    content: bytes | None


@dataclass(frozen=True)
class ChangeRequest:
    """What to propose: a branch ``head`` started at ``start_sha`` on top of which ``files``
    are committed (with ``commit_message``), and a pull request from it into ``base``.

    ``head`` is the idempotency key: opening the same ChangeRequest again returns the pull
    request already opened from ``head`` into ``base`` (whatever its state) and commits nothing
    twice. With no ``files`` the branch must exist already (pushed with git), or is created at
    ``start_sha`` as it is.
    """

    repo: RepoRef
    base: str
    head: str
    title: str
    body: str
    start_sha: str = ""
    files: tuple[FileChange, ...] = ()
    commit_message: str = ""


class CommitState(enum.Enum):
    """The four states every forge's commit status API knows."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"


@dataclass(frozen=True)
class CommitStatus:
    """A status on a commit, one per ``context`` (the latest per context is what counts)."""

    state: CommitState
    context: str
    description: str = ""
    target_url: str = ""


@dataclass(frozen=True)
class Comment:
    """A comment on a pull request."""

    id: int
    url: str
    body: str = field(repr=False)
