"""The forge half of a rollback: a failing commit status on the bad commit, and a revert pull
request with the evidence, each done once, later if the forge is down.

Both steps are safe to repeat (the agent retries them on its interval while an entry is
pending): the commit status is a set-by-context, and ``open_change`` is idempotent by branch,
so however many times a retry runs, there is one branch and one pull request. Each step's
success is saved on its own, so a step done is not done again.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from tether.core.renderdigest import short_digest
from tether.delivery.quarantine import PullRequestRef, QuarantineEntry
from tether.forge import ChangeRequest, CommitState, CommitStatus, FileChange, Forge, RepoRef

COMMIT_STATUS_CONTEXT = "tether/delivery"
RevertFiles = Callable[[str, str], Awaitable[list[tuple[str, bytes | None]]]]
"""``(good commit, bad commit) -> [(path, content at good or None)]`` (from tether.source)."""


@dataclass(frozen=True)
class ForgeTarget:
    """Where an app's revert goes: the forge, the repository, the branch the source follows,
    and how to get the revert's files from Git."""

    forge: Forge
    repo: RepoRef
    base: str
    files: RevertFiles


def revert_branch(app_key: str, entry: QuarantineEntry) -> str:
    """``tether/revert/<namespace>-<app>/<commit12>``: one branch (so one pull request) per
    app and bad commit."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", app_key).strip("-")
    return f"tether/revert/{name}/{entry.revision[:12]}"


def pull_request_body(app_key: str, entry: QuarantineEntry) -> str:
    """What the reviewer reads: what failed, what was put back, the evidence, what merging does."""
    stable = entry.stable_revision[:12] or "the last good render"
    return "\n".join(
        [
            f"Tether rolled app `{app_key}` back from `{entry.revision[:12]}` to `{stable}` "
            f"and quarantined render `{short_digest(entry.render_digest)}`.",
            "",
            f"**Why** ({entry.by}, {entry.since}): {entry.reason}",
            "",
            "**Evidence**",
            "",
            "```",
            entry.evidence.strip() or "(none given)",
            "```",
            "",
            f"This pull request puts the app's files back as they were at `{stable}`. Once it "
            "(or a fix) is merged, the head renders another digest and the quarantine lifts "
            "by itself; auto-sync stayed on meanwhile.",
        ]
    )


def commit_status(app_key: str, entry: QuarantineEntry) -> CommitStatus:
    description = f"{app_key} rolled back: {entry.reason}"
    return CommitStatus(CommitState.FAILURE, COMMIT_STATUS_CONTEXT, description[:140])


async def set_failing_status(
    target: ForgeTarget, app_key: str, entry: QuarantineEntry
) -> QuarantineEntry:
    """The failing commit status on the bad commit (statuses are per context: repeatable)."""
    await target.forge.set_commit_status(target.repo, entry.revision, commit_status(app_key, entry))
    return replace(entry, commit_status_set=True)


async def open_revert(target: ForgeTarget, app_key: str, entry: QuarantineEntry) -> QuarantineEntry:
    """The revert pull request (``open_change`` is idempotent by branch: one, however often)."""
    return await _open_revert(target, app_key, entry)


async def _open_revert(
    target: ForgeTarget, app_key: str, entry: QuarantineEntry
) -> QuarantineEntry:
    if not entry.stable_revision:
        return replace(entry, pull_request_pending=False)  # nothing in Git to revert to
    files = await target.files(entry.stable_revision, entry.revision)
    if not files:  # the app's files are the same: the bad render came from outside its path
        return replace(entry, pull_request_pending=False)
    request = ChangeRequest(
        repo=target.repo,
        base=target.base,
        head=revert_branch(app_key, entry),
        title=f"Revert {app_key} to {entry.stable_revision[:12]} (rolled back from "
        f"{entry.revision[:12]})",
        body=pull_request_body(app_key, entry),
        start_sha=entry.revision,
        files=tuple(FileChange(path, content) for path, content in files),
        commit_message=f"Revert {app_key} to {entry.stable_revision[:12]}\n\n{entry.reason}",
    )
    pull = await target.forge.open_change(request)
    return replace(
        entry, pull_request=PullRequestRef(pull.url, pull.number), pull_request_pending=False
    )
