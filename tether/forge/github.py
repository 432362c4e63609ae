"""The GitHub driver of ``Forge``: REST API v3 on github.com or GitHub Enterprise Server.

Tested against recorded contracts (a stand-in for GitHub, which cannot run here): request →
response pairs written from GitHub's public REST documentation, in
``tests/forge/contracts/github/``.

``open_change`` writes the revert without a clone, through the git data API: the branch is a
ref created at ``start_sha`` (``POST /git/refs``); each new file is a blob, the blobs and the
deletions make a tree on top of ``start_sha``'s tree, the tree a commit whose parent is
``start_sha``, and the ref is moved to it (fast-forward only). Every step looks first, as in
``tether.forge.idempotency``: an existing pull request from the branch is returned as it is;
the commit is made only while the branch still points at ``start_sha``.

The token is sent as ``Authorization: Bearer …`` (a personal access token, a fine-grained
token, or a GitHub App installation token from ``tether.source.GitHubApp``). It needs
"Contents: write" (refs, blobs, trees, commits), "Pull requests: write" and "Commit statuses:
write".
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from tether.errors import ForgeError
from tether.forge.idempotency import (
    create_branch_once,
    open_change_once,
    prepare_branch,
    same_commit,
)
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
from tether.forge.transport import ForgeDriver, ForgeHttp, ForgeSettings, plain_base_url

GITHUB_COM = "https://github.com"
_GITHUB_COM_API = "https://api.github.com"
_ENTERPRISE_API_PREFIX = "/api/v3"
_API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
_PAGE_SIZE = 100
_DESCRIPTION_LIMIT = 140  # GitHub refuses a longer commit status description
_FILE_MODE = "100644"


def github_api_url(base_url: str) -> str:
    """The REST API root of a GitHub: ``https://api.github.com`` for github.com, and
    ``https://HOST/api/v3`` for GitHub Enterprise Server (either address may be given)."""
    plain = plain_base_url(base_url)
    host = (urlsplit(plain).hostname or "").lower()
    if host in ("github.com", "www.github.com", "api.github.com"):
        return _GITHUB_COM_API
    if plain.endswith(_ENTERPRISE_API_PREFIX):
        return plain
    return plain + _ENTERPRISE_API_PREFIX


class GitHubForge(ForgeDriver):
    """Pull requests, comments and commit statuses on github.com or a GitHub Enterprise Server."""

    def __init__(
        self,
        base_url: str,
        credentials: TokenProvider,
        settings: ForgeSettings | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            ForgeHttp(
                github_api_url(base_url),
                "",
                credentials,
                settings,
                sleep=sleep,
                auth_scheme="Bearer",
                headers=_API_HEADERS,
            )
        )

    # -- pull requests -----------------------------------------------------------------------

    async def open_change(self, request: ChangeRequest) -> PullRequest:
        repo, head = request.repo, request.head
        return await open_change_once(
            find=lambda: self._pulls(repo, head, base=request.base),
            prepare=lambda: prepare_branch(
                request,
                branch_head=lambda: self._branch_head(repo, head),
                create_branch=lambda: self._create_branch(repo, head, request.start_sha),
                commit_files=lambda: self._commit_files(request),
                where=self.base_url,
                url=self._http.url_of(repo_path(repo, "/git/refs")),
            ),
            create=lambda: self._create_pull(request),
            # 422 "A pull request already exists": an earlier attempt made it.
            made_already=lambda error: error.status == 422 and "already exists" in str(error),
        )

    async def find_pull_requests(self, repo: RepoRef, head: str) -> list[PullRequest]:
        return await self._pulls(repo, head)

    async def _pulls(self, repo: RepoRef, head: str, *, base: str = "") -> list[PullRequest]:
        """Pull requests from branch ``head`` of ``repo`` itself (``head=owner:branch``), in any
        state, newest first."""
        params: dict[str, str | int] = {
            "state": "all",
            "head": f"{repo.owner}:{head}",
            "per_page": _PAGE_SIZE,
        }
        if base:
            params["base"] = base
        items = await self._http.pages(
            repo_path(repo, "/pulls"),
            params=params,
            what=f"listing pull requests from {head} in {repo}",
        )
        pulls = [_pull_from_json(repo, item) for item in items]
        return sorted(pulls, key=lambda pull: pull.number, reverse=True)

    async def pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        data = await self._http.request(
            "GET",
            repo_path(repo, f"/pulls/{number}"),
            what=f"reading pull request #{number} of {repo}",
        )
        return _pull_from_json(repo, data)

    async def _create_pull(self, request: ChangeRequest) -> PullRequest:
        data = await self._http.request(
            "POST",
            repo_path(request.repo, "/pulls"),
            body={
                "title": request.title,
                "head": request.head,
                "base": request.base,
                "body": request.body,
            },
            what=f"opening a pull request {request.head} → {request.base} in {request.repo}",
        )
        return _pull_from_json(request.repo, data)

    # -- branches and the revert commit (git data API) ---------------------------------------

    async def _branch_head(self, repo: RepoRef, branch: str) -> str | None:
        data = await self._http.request(
            "GET",
            repo_path(repo, f"/git/ref/heads/{quote(branch, safe='/')}"),
            what=f"reading branch {branch} of {repo}",
            missing_ok=True,
        )
        return None if data is None else str(data["object"]["sha"])

    async def _create_branch(self, repo: RepoRef, branch: str, start_sha: str) -> None:
        await create_branch_once(
            lambda: self._http.request(
                "POST",
                repo_path(repo, "/git/refs"),
                body={"ref": f"refs/heads/{branch}", "sha": start_sha},
                what=f"creating branch {branch} at {start_sha[:12]} in {repo}",
            ),
            refusal=422,
            repo=repo,
            start_sha=start_sha,
        )

    async def _commit_files(self, request: ChangeRequest) -> None:
        repo = request.repo
        entries = [
            entry
            for change in request.files
            if (entry := await self._tree_entry(repo, request.start_sha, change)) is not None
        ]
        if not entries:
            return
        start = await self._http.request(
            "GET",
            repo_path(repo, f"/git/commits/{quote(request.start_sha, safe='')}"),
            what=f"reading commit {request.start_sha[:12]} of {repo}",
        )
        tree = await self._http.request(
            "POST",
            repo_path(repo, "/git/trees"),
            body={"base_tree": start["tree"]["sha"], "tree": entries},
            what=f"writing the tree of the revert on {request.head} of {repo}",
            repeatable=True,  # git objects are content-addressed: writing one twice is harmless
        )
        commit = await self._http.request(
            "POST",
            repo_path(repo, "/git/commits"),
            body={
                "message": request.commit_message or request.title,
                "tree": tree["sha"],
                "parents": [request.start_sha],
            },
            what=f"writing the revert commit for {request.head} of {repo}",
            repeatable=True,  # an unreferenced commit object is harmless
        )
        await self._move_branch(request, str(commit["sha"]))

    async def _tree_entry(
        self, repo: RepoRef, start_sha: str, change: FileChange
    ) -> dict[str, Any] | None:
        """The tree entry for one file: a new blob, or a deletion (None when already absent)."""
        if change.content is not None:
            blob = await self._http.request(
                "POST",
                repo_path(repo, "/git/blobs"),
                body={"content": base64.b64encode(change.content).decode(), "encoding": "base64"},
                what=f"writing {change.path} to {repo}",
                repeatable=True,  # a blob is content-addressed
            )
            sha: str | None = str(blob["sha"])
        else:
            existing = await self._http.request(
                "GET",
                repo_path(repo, f"/contents/{quote(change.path.lstrip('/'), safe='/')}"),
                params={"ref": start_sha},
                what=f"reading {change.path} at {start_sha[:12]} of {repo}",
                missing_ok=True,
            )
            if not isinstance(existing, dict):  # already absent (or a directory listing)
                return None
            sha = None  # a null sha deletes the path from the base tree
        return {"path": change.path.lstrip("/"), "mode": _FILE_MODE, "type": "blob", "sha": sha}

    async def _move_branch(self, request: ChangeRequest, commit_sha: str) -> None:
        """Fast-forward ``head`` to the revert commit; when another replica moved it first, its
        commit stands."""
        repo, head = request.repo, request.head
        try:
            await self._http.request(
                "PATCH",
                repo_path(repo, f"/git/refs/heads/{quote(head, safe='/')}"),
                body={"sha": commit_sha, "force": False},
                what=f"moving branch {head} of {repo} to the revert commit",
            )
        except ForgeError as error:
            if error.status != 422:
                raise
            now = await self._branch_head(repo, head)
            if now is None or same_commit(now, request.start_sha):
                raise
            # Not a fast-forward: the branch moved on (an earlier attempt committed already).

    # -- comments and statuses ---------------------------------------------------------------

    async def comment(self, repo: RepoRef, number: int, body: str, *, key: str = "") -> Comment:
        async def existing() -> list[Comment]:
            items = await self._http.pages(
                repo_path(repo, f"/issues/{number}/comments"),
                params={"per_page": _PAGE_SIZE},
                what=f"reading the comments of pull request #{number} of {repo}",
            )
            return [comment_from_json(item) for item in items]

        return await issue_comment(self._http, repo, number, body, key=key, existing=existing)

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None:
        body: dict[str, str] = {"state": status.state.value, "context": status.context}
        if status.description:
            body["description"] = _shortened(status.description)
        if status.target_url:
            body["target_url"] = status.target_url
        try:
            await self._http.request(
                "POST",
                repo_path(repo, f"/statuses/{quote(sha, safe='')}"),
                body=body,
                what=f"setting commit status {status.context}={status.state.value} on "
                f"{sha[:12]} in {repo}",
                repeatable=True,  # the latest status per context wins: setting it twice is fine
            )
        except ForgeError as error:
            if error.status == 422 and "No commit found" in str(error):
                raise ForgeError(
                    f"{error}; was commit {sha[:12]} pushed to {repo}?",
                    url=error.url,
                    status=error.status,
                ) from error
            raise

    async def commit_statuses(self, repo: RepoRef, sha: str) -> list[CommitStatus]:
        # The combined status holds the latest status of each context.
        items = await self._http.pages(
            repo_path(repo, f"/commits/{quote(sha, safe='')}/status"),
            params={"per_page": _PAGE_SIZE},
            items=lambda combined: list((combined or {}).get("statuses") or []),
            what=f"reading the commit statuses of {sha[:12]} in {repo}",
        )
        return [
            CommitStatus(
                state=CommitState(str(item["state"])),
                context=str(item.get("context", "")),
                description=str(item.get("description") or ""),
                target_url=str(item.get("target_url") or ""),
            )
            for item in items
        ]


def _shortened(text: str) -> str:
    return text if len(text) <= _DESCRIPTION_LIMIT else text[: _DESCRIPTION_LIMIT - 1] + "…"


def _pull_from_json(repo: RepoRef, data: dict[str, Any]) -> PullRequest:
    merged = bool(data.get("merged") or data.get("merged_at"))
    state = PullState.MERGED if merged else PullState(str(data.get("state", "open")))
    merge_commit = data.get("merge_commit_sha") if merged else None
    return PullRequest(
        repo=repo,
        number=int(data["number"]),
        url=str(data.get("html_url", "")),
        state=state,
        head=str(data.get("head", {}).get("ref", "")),
        base=str(data.get("base", {}).get("ref", "")),
        head_sha=str(data.get("head", {}).get("sha", "")),
        title=str(data.get("title", "")),
        merge_commit=str(merge_commit) if merge_commit else None,
    )
