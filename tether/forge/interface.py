"""What delivery needs from a forge, as one Protocol, and how a forge driver gets its token.

Delivery (canary abort, rollback, promotion) depends on ``Forge`` only; ``GiteaForge`` is the
driver tested against a real Gitea, ``GitHubForge`` and ``GitLabForge`` are tested against
recorded contracts (stand-ins for GitHub and GitLab, which cannot run here), and ``forge_for``
picks one by kind or URL.

Credentials: a driver asks its ``TokenProvider`` for the token on every request, never keeps
it, and never puts it in an error or a log line. ``current()`` returns ``(username, token)``,
the same shape as ``tether.source.CredentialProvider``, so a source's ``TokenFile`` or
``GitHubApp`` can be handed to a forge driver unchanged (a rotated token is used by the next
request).
"""

from __future__ import annotations

from typing import Protocol

from tether.forge.model import (
    ChangeRequest,
    Comment,
    CommitStatus,
    PullRequest,
    RepoRef,
)


class TokenProvider(Protocol):
    """Gives the credentials for the next request, now."""

    def current(self) -> tuple[str, str]:
        """``(username, token)``; raises a ``TetherError`` (without secrets) when there are none."""
        ...


class StaticToken:
    """A token known up front (tests, a one-off CLI call); prefer a rotating provider."""

    def __init__(self, token: str, username: str = "tether") -> None:
        self._token = token
        self.username = username

    def __repr__(self) -> str:
        return f"StaticToken(username={self.username!r})"

    def current(self) -> tuple[str, str]:
        return self.username, self._token


class Forge(Protocol):
    """The pull-request, comment and commit-status operations delivery uses.

    Every method raises ``ForgeUnreachable`` when the forge does not answer (the caller queues
    the action and tries again later) and ``ForgeError`` when it refuses. Every write is safe to
    repeat after either error: repeating it never duplicates what the first attempt did.
    """

    @property
    def base_url(self) -> str:
        """The forge's address, as errors name it."""
        ...

    async def open_change(self, request: ChangeRequest) -> PullRequest:
        """Make sure branch ``request.head`` carries ``request.files`` and a pull request from it
        into ``request.base`` exists; return it. Idempotent on (repo, head, base): a pull request
        already opened from that branch is returned as it is, whatever its state."""
        ...

    async def find_pull_requests(self, repo: RepoRef, head: str) -> list[PullRequest]:
        """Every pull request (open, merged or closed) from branch ``head``, newest first."""
        ...

    async def pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        """The pull request ``number`` as it stands now (state, merge commit)."""
        ...

    async def comment(self, repo: RepoRef, number: int, body: str, *, key: str = "") -> Comment:
        """Add a comment to pull request ``number``. With a ``key``, the comment already carrying
        that key is edited to read ``body`` (when it does not already) and returned, instead of
        posting a second one."""
        ...

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None:
        """Set ``status`` on commit ``sha`` (the latest status per context is what counts)."""
        ...

    async def commit_statuses(self, repo: RepoRef, sha: str) -> list[CommitStatus]:
        """The latest status of each context on commit ``sha``."""
        ...

    async def close(self) -> None:
        """Release the connections."""
        ...
