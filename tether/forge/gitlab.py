"""The GitLab driver of ``Forge``: REST API v4 on gitlab.com or a self-managed GitLab.

Tested against recorded contracts (a stand-in for GitLab, which cannot run here): request →
response pairs written from GitLab's public REST documentation, in
``tests/forge/contracts/gitlab/``.

GitLab's words differ from the interface's: a pull request is a merge request, numbered by its
``iid``; a comment is a note; a commit status has a ``name`` (the context). The project is
addressed by its URL-encoded path (``group%2Frepo``, subgroups included). ``open_change``
creates the branch at ``start_sha``, then commits the files with the commits API and its
``actions`` (``create`` or ``update`` as the file exists on the branch, ``delete`` when it
does), so no clone is needed; every step looks first, as in ``tether.forge.idempotency``.

Commit states map onto GitLab's:

    pending → pending    success → success    failure → failed    error → canceled

and back (``running`` and GitLab's other unfinished states read as pending, ``skipped`` as
error). GitLab refuses to set the state a status already has while it is unfinished
("Cannot transition status via :enqueue from :pending"); the driver reads the status back and,
when it is already the one asked for, counts it as done.

The token (personal, project or group access token, or OAuth) is sent as ``Authorization:
Bearer …`` and needs the ``api`` scope.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from tether.errors import ForgeError
from tether.forge.idempotency import (
    create_branch_once,
    keyed_comment,
    open_change_once,
    prepare_branch,
)
from tether.forge.interface import TokenProvider
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

GITLAB_COM = "https://gitlab.com"
_API_PREFIX = "/api/v4"
_PAGE_SIZE = 100
_TO_GITLAB = {
    CommitState.PENDING: "pending",
    CommitState.SUCCESS: "success",
    CommitState.FAILURE: "failed",
    CommitState.ERROR: "canceled",
}
_FROM_GITLAB = {
    "success": CommitState.SUCCESS,
    "failed": CommitState.FAILURE,
    "canceled": CommitState.ERROR,
    "skipped": CommitState.ERROR,
}
_MERGE_REQUEST_STATES = {
    "opened": PullState.OPEN,
    "locked": PullState.OPEN,  # being merged right now
    "merged": PullState.MERGED,
    "closed": PullState.CLOSED,
}
_SAME_STATE_REFUSAL = "Cannot transition status"


def gitlab_root_url(base_url: str) -> str:
    """The GitLab's own address, whether it is given with ``/api/v4`` or without."""
    return plain_base_url(base_url).removesuffix(_API_PREFIX)


class GitLabForge(ForgeDriver):
    """Merge requests, notes and commit statuses on gitlab.com or a self-managed GitLab."""

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
                gitlab_root_url(base_url),
                _API_PREFIX,
                credentials,
                settings,
                sleep=sleep,
                auth_scheme="Bearer",
            )
        )

    # -- merge requests ----------------------------------------------------------------------

    async def open_change(self, request: ChangeRequest) -> PullRequest:
        repo, head = request.repo, request.head
        return await open_change_once(
            find=lambda: self._merge_requests(repo, head, target=request.base),
            prepare=lambda: prepare_branch(
                request,
                branch_head=lambda: self._branch_head(repo, head),
                create_branch=lambda: self._create_branch(repo, head, request.start_sha),
                commit_files=lambda: self._commit_files(request),
                where=self.base_url,
                url=self._http.url_of(_project_path(repo, "/repository/branches")),
            ),
            create=lambda: self._create_merge_request(request),
            # 409 "Another open merge request already exists": an earlier attempt made it.
            made_already=lambda error: error.status == 409,
        )

    async def find_pull_requests(self, repo: RepoRef, head: str) -> list[PullRequest]:
        return await self._merge_requests(repo, head)

    async def _merge_requests(
        self, repo: RepoRef, source: str, *, target: str = ""
    ) -> list[PullRequest]:
        params: dict[str, str | int] = {
            "source_branch": source,
            "state": "all",
            "per_page": _PAGE_SIZE,
        }
        if target:
            params["target_branch"] = target
        items = await self._http.pages(
            _project_path(repo, "/merge_requests"),
            params=params,
            what=f"listing merge requests from {source} in {repo}",
        )
        found = [_pull_from_json(repo, item) for item in items if not _from_a_fork(item)]
        return sorted(found, key=lambda pull: pull.number, reverse=True)

    async def pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        data = await self._http.request(
            "GET",
            _project_path(repo, f"/merge_requests/{number}"),
            what=f"reading merge request !{number} of {repo}",
        )
        return _pull_from_json(repo, data)

    async def _create_merge_request(self, request: ChangeRequest) -> PullRequest:
        data = await self._http.request(
            "POST",
            _project_path(request.repo, "/merge_requests"),
            body={
                "source_branch": request.head,
                "target_branch": request.base,
                "title": request.title,
                "description": request.body,
            },
            what=f"opening a merge request {request.head} → {request.base} in {request.repo}",
        )
        return _pull_from_json(request.repo, data)

    # -- branches and the revert commit (commits API with actions) ---------------------------

    async def _branch_head(self, repo: RepoRef, branch: str) -> str | None:
        data = await self._http.request(
            "GET",
            _project_path(repo, f"/repository/branches/{quote(branch, safe='')}"),
            what=f"reading branch {branch} of {repo}",
            missing_ok=True,
        )
        return None if data is None else str(data["commit"]["id"])

    async def _create_branch(self, repo: RepoRef, branch: str, start_sha: str) -> None:
        await create_branch_once(
            lambda: self._http.request(
                "POST",
                _project_path(repo, "/repository/branches"),
                body={"branch": branch, "ref": start_sha},
                what=f"creating branch {branch} at {start_sha[:12]} in {repo}",
            ),
            refusal=400,
            repo=repo,
            start_sha=start_sha,
        )

    async def _commit_files(self, request: ChangeRequest) -> None:
        actions = [
            action
            for change in request.files
            if (action := await self._action(request.repo, request.head, change)) is not None
        ]
        if not actions:
            return
        await self._http.request(
            "POST",
            _project_path(request.repo, "/repository/commits"),
            body={
                "branch": request.head,
                "commit_message": request.commit_message or request.title,
                "actions": actions,
            },
            what=f"committing {len(actions)} file(s) to branch {request.head} of {request.repo}",
        )

    async def _action(
        self, repo: RepoRef, branch: str, change: FileChange
    ) -> dict[str, str] | None:
        """The commit action for one file: ``create`` or ``update`` as it exists on the branch,
        ``delete`` when it exists (None when it is already absent)."""
        path = change.path.lstrip("/")
        exists = (
            await self._http.request(
                "GET",
                _project_path(repo, f"/repository/files/{quote(path, safe='')}"),
                params={"ref": branch},
                what=f"reading {path} on branch {branch} of {repo}",
                missing_ok=True,
            )
            is not None
        )
        if change.content is None:
            return {"action": "delete", "file_path": path} if exists else None
        return {
            "action": "update" if exists else "create",
            "file_path": path,
            "content": base64.b64encode(change.content).decode(),
            "encoding": "base64",
        }

    # -- notes and statuses ------------------------------------------------------------------

    async def comment(self, repo: RepoRef, number: int, body: str, *, key: str = "") -> Comment:
        web = f"{self.base_url}/{repo.owner}/{repo.name}/-/merge_requests/{number}"

        async def existing() -> list[Comment]:
            items = await self._http.pages(
                _project_path(repo, f"/merge_requests/{number}/notes"),
                params={"sort": "asc", "order_by": "created_at", "per_page": _PAGE_SIZE},
                what=f"reading the notes of merge request !{number} of {repo}",
            )
            return [_comment_from_json(item, web) for item in items if not item.get("system")]

        async def post(text: str) -> Comment:
            data = await self._http.request(
                "POST",
                _project_path(repo, f"/merge_requests/{number}/notes"),
                body={"body": text},
                what=f"commenting on merge request !{number} of {repo}",
            )
            return _comment_from_json(data, web)

        async def edit(comment: Comment, text: str) -> Comment:
            data = await self._http.request(
                "PUT",
                _project_path(repo, f"/merge_requests/{number}/notes/{comment.id}"),
                body={"body": text},
                what=f"editing note {comment.id} on merge request !{number} of {repo}",
                repeatable=True,  # the same text written twice is the same note
            )
            return _comment_from_json(data, web)

        return await keyed_comment(body, key, existing=existing, post=post, edit=edit)

    async def set_commit_status(self, repo: RepoRef, sha: str, status: CommitStatus) -> None:
        body: dict[str, str] = {"state": _TO_GITLAB[status.state], "name": status.context}
        if status.description:
            body["description"] = status.description
        if status.target_url:
            body["target_url"] = status.target_url
        try:
            await self._http.request(
                "POST",
                _project_path(repo, f"/statuses/{quote(sha, safe='')}"),
                body=body,
                what=f"setting commit status {status.context}={status.state.value} on "
                f"{sha[:12]} in {repo}",
                repeatable=True,  # the latest status per name wins: setting it twice is harmless
            )
        except ForgeError as error:
            if error.status != 400 or _SAME_STATE_REFUSAL not in str(error):
                raise
            current = {item.context: item for item in await self.commit_statuses(repo, sha)}
            if (now := current.get(status.context)) is None or now.state is not status.state:
                raise

    async def commit_statuses(self, repo: RepoRef, sha: str) -> list[CommitStatus]:
        items = await self._http.pages(
            _project_path(repo, f"/repository/commits/{quote(sha, safe='')}/statuses"),
            params={"per_page": _PAGE_SIZE},
            what=f"reading the commit statuses of {sha[:12]} in {repo}",
        )
        latest: dict[str, dict[str, Any]] = {}
        for item in sorted(items, key=lambda item: int(item.get("id", 0))):
            latest[str(item.get("name", ""))] = item  # a later status of a name replaces it
        return [
            CommitStatus(
                state=_FROM_GITLAB.get(str(item.get("status")), CommitState.PENDING),
                context=name,
                description=str(item.get("description") or ""),
                target_url=str(item.get("target_url") or ""),
            )
            for name, item in latest.items()
        ]


def _project_path(repo: RepoRef, rest: str) -> str:
    return f"/projects/{quote(f'{repo.owner}/{repo.name}', safe='')}{rest}"


def _from_a_fork(item: dict[str, Any]) -> bool:
    """A merge request whose source branch lives in another project (a fork's branch of the
    same name is not Tether's revert)."""
    source = item.get("source_project_id")
    target = item.get("target_project_id") or item.get("project_id")
    return source is not None and target is not None and source != target


def _pull_from_json(repo: RepoRef, data: dict[str, Any]) -> PullRequest:
    state = _MERGE_REQUEST_STATES.get(str(data.get("state")), PullState.OPEN)
    merge_commit = (
        data.get("merge_commit_sha") or data.get("squash_commit_sha") or data.get("sha")
        if state is PullState.MERGED
        else None
    )
    return PullRequest(
        repo=repo,
        number=int(data["iid"]),
        url=str(data.get("web_url", "")),
        state=state,
        head=str(data.get("source_branch", "")),
        base=str(data.get("target_branch", "")),
        head_sha=str(data.get("sha") or ""),
        title=str(data.get("title", "")),
        merge_commit=str(merge_commit) if merge_commit else None,
    )


def _comment_from_json(data: dict[str, Any], merge_request_url: str) -> Comment:
    note = int(data["id"])
    return Comment(id=note, url=f"{merge_request_url}#note_{note}", body=str(data["body"]))
