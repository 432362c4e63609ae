"""The only piece that talks to a forge: pull requests, comments, commit statuses.

    Forge                   the Protocol delivery depends on (interface.py)
    ├── GiteaForge          Gitea's API v1, tested against a real Gitea (gitea.py)
    ├── GitHubForge         GitHub's REST v3 (github.com, Enterprise Server) (github.py)
    └── GitLabForge         GitLab's REST v4 (gitlab.com, self-managed) (gitlab.py)
    forge_for               the driver for a kind (gitea | github | gitlab) or a URL (kinds.py)
    revert_branch           ``tether/revert-<sha>``, a revert's idempotency key (idempotency.py)
    ChangeRequest           a branch + files + pull request to open, keyed by its head branch
    PullRequest, PullState  what the forge reports (open | merged | closed, merge commit)
    CommitStatus            pending | success | failure | error, with context, description, URL
    TokenProvider           ``current() -> (username, token)``, asked on every request
    ForgeSettings           timeouts, attempts, backoff (transport.py)

Errors (``tether.errors``): ``ForgeError`` when the forge refuses; ``ForgeUnreachable`` when it
does not answer, so the caller can queue the action and retry it later. Every write can be
repeated safely. Tokens never appear in errors or logs. See docs/forge.md.
"""

from tether.forge.gitea import GiteaForge
from tether.forge.github import GitHubForge
from tether.forge.gitlab import GitLabForge
from tether.forge.idempotency import revert_branch
from tether.forge.interface import Forge, StaticToken, TokenProvider
from tether.forge.kinds import ForgeKind, forge_for
from tether.forge.model import (
    ChangeRequest,
    Comment,
    CommitState,
    CommitStatus,
    FileChange,
    PullRequest,
    PullState,
    RepoRef,
)
from tether.forge.transport import ForgeSettings

__all__ = [
    "ChangeRequest",
    "Comment",
    "CommitState",
    "CommitStatus",
    "FileChange",
    "Forge",
    "ForgeKind",
    "ForgeSettings",
    "GitHubForge",
    "GitLabForge",
    "GiteaForge",
    "PullRequest",
    "PullState",
    "RepoRef",
    "StaticToken",
    "TokenProvider",
    "forge_for",
    "revert_branch",
]
