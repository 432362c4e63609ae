"""The Gitea driver of ``Forge`` (API v1; tested against a real Gitea 1.26).

``open_change`` is built to be repeated: it looks before it writes at every step (the pull
request by base and head, the branch, the branch's head commit), so a second call, or a call
after a failure half-way, finishes the job without duplicating any of it.

Gitea indexes pushes in the background: right after a push it can call the repository empty,
not know the pushed commit or branch, or answer a pull request creation without keeping the
pull request. The driver reads what it created back and tries again, for up to
``ForgeSettings.settle_seconds``, instead of leaving this to its callers.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from tether.errors import ForgeError, ForgeUnreachable
from tether.forge.idempotency import prepare_branch
from tether.forge.interface import TokenProvider
from tether.forge.issuecomments import comment_from_json, issue_comment, repo_path
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
from tether.forge.transport import ForgeDriver, ForgeHttp, ForgeSettings

_PAGE_SIZE = 50
_MAX_PAGES = 40
_T = TypeVar("_T")


class _NotYet(Exception):
    """Gitea does not show yet what was just pushed or created: worth another look soon.

    ``outage`` is set when the symptom was a 5xx: should it last, it is reported as the outage
    it then is, not as something missing."""

    def __init__(self, reason: str, url: str, outage: ForgeUnreachable | None = None) -> None:
        super().__init__(reason)
        self.url = url
        self.outage = outage


class GiteaForge(ForgeDriver):
    """Pull requests, comments and commit statuses on one Gitea server."""

    def __init__(
        self,
        base_url: str,
        credentials: TokenProvider,
        settings: ForgeSettings | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(ForgeHttp(base_url, "/api/v1", credentials, settings, sleep=sleep))
        self._sleep = sleep

    # -- pull requests -----------------------------------------------------------------------

    async def open_change(self, request: ChangeRequest) -> PullRequest:
        existing = await self._pull_by_base_head(request.repo, request.base, request.head)
        if existing is not None:
            return existing
        what = f"opening a pull request {request.head} → {request.base} in {request.repo}"
        await self._settled(what, lambda: self._prepare_branch(request))
        return await self._settled(what, lambda: self._create_and_confirm(request))

    async def _settled(self, what: str, step: Callable[[], Awaitable[_T]]) -> _T:
        """``step()``, tried again while Gitea does not show yet what was just pushed or created
        (it indexes pushes in the background), for up to ``settle_seconds``."""
        settings = self._http.settings
        waited, attempt = 0.0, 0
        while True:
            try:
                return await step()
            except _NotYet as not_yet:
                if waited >= settings.settle_seconds:
                    if not_yet.outage is not None:
                        raise not_yet.outage from None
                    raise ForgeError(
                        f"{what}: Gitea at {self.base_url} {not_yet} after {waited:g}s; check the "
                        "commit was pushed there and look at the server's log",
                        url=not_yet.url,
                    ) from not_yet
                pause = min(settings.backoff * 2**attempt, settings.max_backoff)
                await self._sleep(pause)
                waited, attempt = waited + pause, attempt + 1

    async def _create_and_confirm(self, request: ChangeRequest) -> PullRequest:
        """Create the pull request and read it back: Gitea has been seen to answer a creation
        made right after a push without keeping the pull request."""
        number = await self._create_pull(request)
        if number is not None:
            kept = await self._pull_by_number(request.repo, number, missing_ok=True)
            if kept is not None:
                return kept
        found = await self._pull_by_base_head(request.repo, request.base, request.head)
        if found is not None:
            return found
        raise _NotYet(
            "does not show the pull request it accepted",
            self._http.url_of(repo_path(request.repo, "/pulls")),
        )

    async def find_pull_requests(self, repo: RepoRef, head: str) -> list[PullRequest]:
        found: list[PullRequest] = []
        for page in range(1, _MAX_PAGES + 1):
            items = await self._pulls_page(repo, page)
            if items is None:
                return []  # an empty repository has no pull requests
            found += [
                _pull_from_json(repo, item)
                for item in items
                if item.get("head", {}).get("ref") == head and _same_repo(item, repo)
            ]
            if len(items) < _PAGE_SIZE:
                break
        return sorted(found, key=lambda pull: pull.number, reverse=True)

    async def _pulls_page(self, repo: RepoRef, page: int) -> list[dict[str, Any]] | None:
        """One page of the repository's pull requests; None for an empty repository.

        Gitea answers 404 for the pull requests of an empty repository. A repository getting
        its first push flips from empty while the two requests are made (seen under load), so a
        404 from a repository that is no longer empty is asked once more before it counts."""
        try:
            return await self._list_pulls(repo, page)
        except ForgeError as error:
            if error.status != 404:
                raise
        if await self._is_empty(repo):
            return None
        return await self._list_pulls(repo, page)

    async def _list_pulls(self, repo: RepoRef, page: int) -> list[dict[str, Any]]:
        items = await self._http.request(
            "GET",
            repo_path(repo, "/pulls"),
            params={"state": "all", "page": page, "limit": _PAGE_SIZE},
            what=f"listing pull requests of {repo}",
        )
        return list(items or [])

    async def _is_empty(self, repo: RepoRef) -> bool:
        data = await self._http.request(
            "GET", repo_path(repo, ""), what=f"reading repository {repo}", missing_ok=True
        )
        return isinstance(data, dict) and bool(data.get("empty"))

    async def pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        pull = await self._pull_by_number(repo, number)
        assert pull is not None  # missing_ok=False raised instead
        return pull

    async def _pull_by_number(
        self, repo: RepoRef, number: int, *, missing_ok: bool = False
    ) -> PullRequest | None:
        data = await self._http.request(
            "GET",
            repo_path(repo, f"/pulls/{number}"),
            what=f"reading pull request #{number} of {repo}",
            missing_ok=missing_ok,
        )
        return None if data is None else _pull_from_json(repo, data)

    async def _pull_by_base_head(self, repo: RepoRef, base: str, head: str) -> PullRequest | None:
        data = await self._http.request(
            "GET",
            repo_path(repo, f"/pulls/{quote(base, safe='')}/{quote(head, safe='/')}"),
            what=f"looking for a pull request {head} → {base} in {repo}",
            missing_ok=True,
        )
        return None if data is None else _pull_from_json(repo, data)

    async def _create_pull(self, request: ChangeRequest) -> int | None:
        """The number of the pull request created, or None when one exists already."""
        try:
            data = await self._http.request(
                "POST",
                repo_path(request.repo, "/pulls"),
                body={
                    "head": request.head,
                    "base": request.base,
                    "title": request.title,
                    "body": request.body,
                },
                what=f"opening a pull request {request.head} → {request.base} in {request.repo}",
            )
        except ForgeError as error:
            if error.status == 404:
                raise _NotYet(f"does not see branch {request.head} yet", error.url) from error
            if error.status == 409:  # it exists already: the caller looks it up
                return None
            raise
        number = data.get("number") if isinstance(data, dict) else None
        return number if isinstance(number, int) else None

    # -- branches and files ------------------------------------------------------------------

    async def _prepare_branch(self, request: ChangeRequest) -> None:
        repo, head = request.repo, request.head
        await prepare_branch(
            request,
            branch_head=lambda: self._branch_head(repo, head),
            create_branch=lambda: self._create_branch(repo, head, request.start_sha),
            commit_files=lambda: self._commit_files(request),
            where=self.base_url,
            url=self._http.url_of(repo_path(repo, "/branches")),
        )

    async def _branch_head(self, repo: RepoRef, branch: str) -> str | None:
        try:
            data = await self._http.request(
                "GET",
                repo_path(repo, f"/branches/{quote(branch, safe='/')}"),
                what=f"reading branch {branch} of {repo}",
                missing_ok=True,
            )
        except ForgeUnreachable as error:
            if error.status is None:
                raise
            # Gitea 1.26 has been seen to panic (500) reading a branch pushed a moment before.
            raise _NotYet(f"fails reading branch {branch}", error.url, error) from error
        return None if data is None else str(data["commit"]["id"])

    async def _create_branch(self, repo: RepoRef, branch: str, start_sha: str) -> None:
        try:
            await self._http.request(
                "POST",
                repo_path(repo, "/branches"),
                body={"new_branch_name": branch, "old_ref_name": start_sha},
                what=f"creating branch {branch} at {start_sha[:12]} in {repo}",
            )
        except ForgeError as error:
            if error.status == 404:  # an empty repository, or a commit not indexed yet
                raise _NotYet(f"does not know commit {start_sha[:12]} yet", error.url) from error
            if error.status != 409:  # 409: it exists already, made by an earlier attempt
                raise

    async def _commit_files(self, request: ChangeRequest) -> None:
        operations = [
            op
            for change in request.files
            if (op := await self._file_operation(request.repo, request.head, change)) is not None
        ]
        if not operations:
            return
        await self._http.request(
            "POST",
            repo_path(request.repo, "/contents"),
            body={
                "branch": request.head,
                "message": request.commit_message or request.title,
                "files": operations,
            },
            what=f"committing {len(operations)} file(s) to branch {request.head} of {request.repo}",
        )

    async def _file_operation(
        self, repo: RepoRef, branch: str, change: FileChange
    ) -> dict[str, str] | None:
        if change.content is not None:
            content = base64.b64encode(change.content).decode()
            return {"operation": "upload", "path": change.path, "content": content}
        existing = await self._http.request(
            "GET",
            repo_path(repo, f"/contents/{quote(change.path.lstrip('/'), safe='/')}"),
            params={"ref": branch},
            what=f"reading {change.path} on branch {branch} of {repo}",
            missing_ok=True,
        )
        if not isinstance(existing, dict):  # already absent (or a directory listing)
            return None
        return {"operation": "delete", "path": change.path, "sha": str(existing["sha"])}

    # -- comments and statuses ---------------------------------------------------------------

    async def comment(self, repo: RepoRef, number: int, body: str, *, key: str = "") -> Comment:
        async def existing() -> list[Comment]:
            return [comment_from_json(item) for item in await self._comments(repo, number)]

        return await issue_comment(self._http, repo, number, body, key=key, existing=existing)

    async def _comments(self, repo: RepoRef, number: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            batch = await self._http.request(
                "GET",
                repo_path(repo, f"/issues/{number}/comments"),
                params={"page": page, "limit": _PAGE_SIZE},
                what=f"reading the comments of pull request #{number} of {repo}",
            )
            items += batch or []
            if len(batch or []) < _PAGE_SIZE:
                break
        return items

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None:
        what = (
            f"setting commit status {status.context}={status.state.value} on {sha[:12]} in {repo}"
        )
        await self._settled(what, lambda: self._post_status(repo, sha, status, what))

    async def _post_status(self, repo: RepoRef, sha: str, status: CommitStatus, what: str) -> None:
        try:
            await self._post_status_once(repo, sha, status, what)
        except ForgeUnreachable as error:
            # Gitea answers 500 for a commit it does not have: tell that apart from an outage.
            if error.status is not None and not await self._has_commit(repo, sha):
                raise _NotYet(f"does not know commit {sha[:12]}", error.url) from error
            raise

    async def _has_commit(self, repo: RepoRef, sha: str) -> bool:
        found = await self._http.request(
            "GET",
            repo_path(repo, f"/git/commits/{quote(sha, safe='')}"),
            params={"stat": "false", "verification": "false", "files": "false"},
            what=f"looking for commit {sha[:12]} in {repo}",
            missing_ok=True,
        )
        return found is not None

    async def _post_status_once(
        self, repo: RepoRef, sha: str, status: CommitStatus, what: str
    ) -> None:
        await self._commit_known(
            sha,
            "POST",
            repo_path(repo, f"/statuses/{quote(sha, safe='')}"),
            body={
                "state": status.state.value,
                "context": status.context,
                "description": status.description,
                "target_url": status.target_url,
            },
            what=what,
            repeatable=True,  # the latest status per context wins: setting it twice is harmless
        )

    async def _commit_known(self, sha: str, method: str, path: str, **kwargs: Any) -> Any:
        """One request about commit ``sha``; a 404 means Gitea has not indexed it yet (or never
        will: ``_settled`` gives up after ``settle_seconds``)."""
        try:
            return await self._http.request(method, path, **kwargs)
        except ForgeError as error:
            if error.status == 404:
                raise _NotYet(f"does not know commit {sha[:12]}", error.url) from error
            raise

    async def commit_statuses(self, repo: RepoRef, sha: str) -> list[CommitStatus]:
        # The combined status holds the latest status of each context, so no client-side
        # de-duplication of a long history is needed.
        what = f"reading the commit statuses of {sha[:12]} in {repo}"
        items = await self._settled(what, lambda: self._latest_statuses(repo, sha, what))
        return [
            CommitStatus(
                state=CommitState(item["status"]),
                context=str(item.get("context", "")),
                description=str(item.get("description") or ""),
                target_url=str(item.get("target_url") or ""),
            )
            for item in items
        ]

    async def _latest_statuses(self, repo: RepoRef, sha: str, what: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            combined = await self._commit_known(
                sha,
                "GET",
                repo_path(repo, f"/commits/{quote(sha, safe='')}/status"),
                params={"page": page, "limit": _PAGE_SIZE},
                what=what,
            )
            batch = (combined or {}).get("statuses") or []
            items += batch
            if len(batch) < _PAGE_SIZE:
                break
        return items


def _same_repo(item: dict[str, Any], repo: RepoRef) -> bool:
    head_repo = item.get("head", {}).get("repo") or {}
    full_name = str(head_repo.get("full_name", ""))
    return not full_name or full_name.lower() == str(repo).lower()


def _pull_from_json(repo: RepoRef, data: dict[str, Any]) -> PullRequest:
    merged = bool(data.get("merged"))
    state = PullState.MERGED if merged else PullState(str(data.get("state", "open")))
    return PullRequest(
        repo=repo,
        number=int(data["number"]),
        url=str(data.get("html_url", "")),
        state=state,
        head=str(data.get("head", {}).get("ref", "")),
        base=str(data.get("base", {}).get("ref", "")),
        head_sha=str(data.get("head", {}).get("sha", "")),
        title=str(data.get("title", "")),
        merge_commit=str(data["merge_commit_sha"])
        if merged and data.get("merge_commit_sha")
        else None,
    )
