"""How every driver makes its writes safe to repeat, decided once for Gitea, GitHub and GitLab.

- The revert branch is named after the bad commit, ``tether/revert-<12 hex>``: the branch name
  is the key of a change request on every forge (never a time or a counter).
- ``open_change_once``: an open change request from the branch is returned, not opened again;
  one that the forge says exists already (an earlier call opened it) is looked up.
- ``prepare_branch`` looks before it writes: a missing branch is created at ``start_sha``; the
  files are committed only while the branch still points at ``start_sha`` (once it has moved
  on, an earlier, interrupted call made the commit).
- ``create_branch_once``: a branch that already exists was made by an earlier call.
- ``keyed_comment``: a comment with a key carries the invisible marker
  ``<!-- tether-key: K -->``; a second call with the same key edits that comment (when its text
  changed) instead of posting another one.

Each driver supplies the forge-specific steps as small async callables.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from tether.errors import ForgeError
from tether.forge.model import ChangeRequest, Comment, PullRequest, RepoRef

REVERT_BRANCH_PREFIX = "tether/revert-"
_SHORT_SHA = 12
_KEY_MARKER = "<!-- tether-key: {key} -->"


def revert_branch(bad_sha: str) -> str:
    """The head branch of the pull request reverting ``bad_sha``: its idempotency key."""
    return f"{REVERT_BRANCH_PREFIX}{bad_sha[:_SHORT_SHA]}"


def same_commit(left: str, right: str) -> bool:
    """Full and abbreviated SHAs of the same commit compare equal."""
    return bool(left and right) and (left.startswith(right) or right.startswith(left))


async def open_change_once(
    *,
    find: Callable[[], Awaitable[list[PullRequest]]],
    prepare: Callable[[], Awaitable[None]],
    create: Callable[[], Awaitable[PullRequest]],
    made_already: Callable[[ForgeError], bool],
) -> PullRequest:
    """The newest change request ``find`` sees; else the branch is prepared and one created.
    When ``create`` fails with an error ``made_already`` says means it exists, it is looked up."""
    existing = await find()
    if existing:
        return existing[0]
    await prepare()
    try:
        return await create()
    except ForgeError as error:
        if made_already(error) and (found := await find()):
            return found[0]
        raise


async def prepare_branch(
    request: ChangeRequest,
    *,
    branch_head: Callable[[], Awaitable[str | None]],
    create_branch: Callable[[], Awaitable[None]],
    commit_files: Callable[[], Awaitable[None]],
    where: str,
    url: str,
) -> None:
    """Branch ``request.head`` exists and carries ``request.files``: created at ``start_sha``
    and committed to when missing; left alone once its head has moved past ``start_sha``.
    ``where`` and ``url`` name the forge for the error when there is nothing to start from."""
    head_sha = await branch_head()
    if head_sha is None:
        if not request.start_sha:
            raise ForgeError(
                f"branch {request.head} does not exist in {request.repo} at {where} and no start "
                "commit was given to create it from; push it first or give start_sha",
                url=url,
            )
        await create_branch()
        head_sha = request.start_sha
    if request.files and same_commit(head_sha, request.start_sha):
        await commit_files()


async def create_branch_once(
    create: Callable[[], Awaitable[object]], *, refusal: int, repo: RepoRef, start_sha: str
) -> None:
    """Create a branch with ``create``. The forge answers ``refusal`` (GitHub 422, GitLab 400)
    both when the branch exists already (an earlier call made it: done) and when it does not
    know ``start_sha`` (most often never pushed: the error asks that)."""
    try:
        await create()
    except ForgeError as error:
        if error.status != refusal:
            raise
        if "already exists" in str(error):
            return
        raise ForgeError(
            f"{error}; was commit {start_sha[:12]} pushed to {repo}?",
            url=error.url,
            status=error.status,
        ) from error


def key_marker(key: str) -> str:
    return _KEY_MARKER.format(key=key)


async def keyed_comment(
    body: str,
    key: str,
    *,
    existing: Callable[[], Awaitable[Iterable[Comment]]],
    post: Callable[[str], Awaitable[Comment]],
    edit: Callable[[Comment, str], Awaitable[Comment]],
) -> Comment:
    """Post ``body``; with a ``key``, the comment already carrying it is edited to read ``body``
    (left as it is when it already does) instead of posting a second one."""
    if not key:
        return await post(body)
    marker = key_marker(key)
    text = f"{body}\n\n{marker}"
    for comment in await existing():
        if marker in comment.body:
            return comment if _same_text(comment.body, text) else await edit(comment, text)
    return await post(text)


def _same_text(left: str, right: str) -> bool:
    """Equal once line endings and trailing blanks are set aside (forges store ``\r\n``)."""
    return _lines(left) == _lines(right)


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]
