"""What the GitHub and Gitea REST APIs share: a repository lives at ``/repos/OWNER/NAME``, and a
pull request's comments are its issue's comments, posted to ``/issues/N/comments`` and edited
at ``/issues/comments/ID``. How each lists them differs (GitHub follows ``Link`` pages, Gitea
counts pages), so each driver passes its own ``existing``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from tether.forge.idempotency import keyed_comment
from tether.forge.model import Comment, RepoRef
from tether.forge.transport import ForgeHttp


def repo_path(repo: RepoRef, rest: str) -> str:
    return f"/repos/{quote(repo.owner, safe='')}/{quote(repo.name, safe='')}{rest}"


def comment_from_json(data: dict[str, Any]) -> Comment:
    return Comment(id=int(data["id"]), url=str(data.get("html_url", "")), body=str(data["body"]))


async def issue_comment(
    http: ForgeHttp,
    repo: RepoRef,
    number: int,
    body: str,
    *,
    key: str,
    existing: Callable[[], Awaitable[list[Comment]]],
) -> Comment:
    """Post ``body`` on pull request ``number``, or edit the comment carrying ``key``
    (``tether.forge.idempotency.keyed_comment``)."""

    async def post(text: str) -> Comment:
        data = await http.request(
            "POST",
            repo_path(repo, f"/issues/{number}/comments"),
            body={"body": text},
            what=f"commenting on pull request #{number} of {repo}",
        )
        return comment_from_json(data)

    async def edit(comment: Comment, text: str) -> Comment:
        data = await http.request(
            "PATCH",
            repo_path(repo, f"/issues/comments/{comment.id}"),
            body={"body": text},
            what=f"editing comment {comment.id} on pull request #{number} of {repo}",
            repeatable=True,  # the same text written twice is the same comment
        )
        return comment_from_json(data)

    return await keyed_comment(body, key, existing=existing, post=post, edit=edit)
