"""The GitLab driver against recorded contracts (a stand-in for GitLab, which cannot run here):
the revert merge request opened once however often it is asked for, keyed notes edited in
place across pages, commit statuses in GitLab's state names, merge state, and refusals, rate
limits and outages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from tests.forge.conftest import QUICK
from tests.forge.contracts.replay import Pauses, replayed
from tests.forge.recorded import BAD, GOOD, REPO, REVERT, ROLLOUT, revert_request
from tether.errors import ForgeError
from tether.forge import (
    Comment,
    CommitState,
    CommitStatus,
    GitLabForge,
    PullRequest,
    PullState,
    RepoRef,
    StaticToken,
    revert_branch,
)
from tether.forge.gitlab import gitlab_root_url
from tether.forge.transport import ForgeHttp

TOKEN = "glpat-contractTestToken000000"
_T = TypeVar("_T")


def _replayed(
    contracts: list[str], act: Callable[[GitLabForge], Awaitable[_T]], pauses: Pauses | None = None
) -> _T:
    # A self-managed GitLab's address: the driver adds /api/v4 itself.
    def driver(origin: str) -> GitLabForge:
        return GitLabForge(origin, StaticToken(TOKEN), QUICK, sleep=pauses or Pauses())

    return replayed(contracts, TOKEN, driver, act)


def test_a_revert_is_opened_once_however_often_it_is_asked_for() -> None:
    async def twice(forge: GitLabForge) -> tuple[PullRequest, PullRequest]:
        return await forge.open_change(revert_request()), await forge.open_change(revert_request())

    first, again = _replayed(["gitlab/open-revert.yaml", "gitlab/open-revert-again.yaml"], twice)
    assert (first.number, first.state, first.head, first.base, first.head_sha) == (
        7,
        PullState.OPEN,
        "tether/revert-9fceb02d0ae5",
        "main",
        REVERT,
    )
    assert first.url == "https://gitlab.example.com/platform/gitops/-/merge_requests/7"
    assert (again.number, again.merge_commit) == (7, None)


def test_a_merge_request_another_replica_just_created_is_found_not_refused() -> None:
    pull = _replayed(
        ["gitlab/create-conflict.yaml"], lambda forge: forge.open_change(revert_request())
    )
    assert (pull.number, pull.state) == (7, PullState.OPEN)


def test_a_keyed_note_is_edited_in_place_and_never_posted_twice() -> None:
    text = "Analysis run 2: error rate 7.5 %"

    async def notes(forge: GitLabForge) -> list[Comment]:
        return [
            await forge.comment(REPO, 7, text, key="analysis-run-2"),
            await forge.comment(REPO, 7, text, key="analysis-run-2"),
            await forge.comment(REPO, 7, "Stable restored in 4 s", key=f"restored-{BAD[:12]}"),
        ]

    edited, again, restored = _replayed(["gitlab/notes.yaml"], notes)
    assert edited.id == again.id == 303
    assert edited.body.startswith(text)
    assert restored.id == 304
    assert restored.url.endswith("/platform/gitops/-/merge_requests/7#note_304")


def test_statuses_are_set_in_gitlab_s_state_names_and_read_back_in_tether_s() -> None:
    failing = CommitStatus(
        CommitState.FAILURE, "tether/analysis", "error rate 7.5 % > 1 %", ROLLOUT
    )
    pending = CommitStatus(CommitState.PENDING, "tether/smoke")

    async def statuses(forge: GitLabForge) -> tuple[list[CommitStatus], list[CommitStatus]]:
        await forge.set_commit_status(REPO, BAD, failing)
        await forge.set_commit_status(
            REPO, GOOD, CommitStatus(CommitState.SUCCESS, "tether/analysis")
        )
        await forge.set_commit_status(REPO, GOOD, pending)
        await forge.set_commit_status(REPO, GOOD, pending)  # refused by GitLab: already pending
        await forge.set_commit_status(
            REPO,
            BAD,
            CommitStatus(CommitState.ERROR, "tether/prometheus", "the query could not run"),
        )
        return await forge.commit_statuses(REPO, GOOD), await forge.commit_statuses(REPO, BAD)

    good, bad = _replayed(["gitlab/statuses.yaml"], statuses)
    assert good == [CommitStatus(CommitState.SUCCESS, "tether/analysis"), pending]
    assert bad == [
        CommitStatus(
            CommitState.PENDING, "build", "", "https://gitlab.example.com/platform/gitops/-/jobs/88"
        ),
        failing,
        CommitStatus(CommitState.ERROR, "tether/prometheus", "the query could not run"),
    ]


def test_a_merged_merge_request_has_its_merge_commit_and_a_closed_one_none() -> None:
    async def merge_requests(forge: GitLabForge) -> list[PullRequest]:
        return [
            await forge.pull_request(REPO, 7),
            await forge.pull_request(REPO, 6),
            *await forge.find_pull_requests(REPO, revert_branch(BAD)),
        ]

    merged, closed, *every = _replayed(["gitlab/merge-requests.yaml"], merge_requests)
    assert (merged.state, merged.merge_commit) == (
        PullState.MERGED,
        "e5bd3914e2e596debea16f433f57875b5b90bcd6",
    )
    assert (closed.state, closed.merge_commit) == (PullState.CLOSED, None)
    # !9 comes from a fork's branch of the same name: not Tether's revert.
    assert [(pull.number, pull.state) for pull in every] == [
        (7, PullState.MERGED),
        (5, PullState.CLOSED),
    ]


def test_a_rate_limited_note_waits_as_asked_then_goes_through() -> None:
    pauses = Pauses()
    posted = _replayed(
        ["gitlab/rate-limited.yaml"],
        lambda forge: forge.comment(REPO, 7, "A person asked for a retry"),
        pauses,
    )
    assert posted.id == 305
    assert pauses.taken == [7.0]


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://gitlab.com/", "https://gitlab.com"),
        ("https://git.example.com/gitlab", "https://git.example.com/gitlab"),
        ("https://git.example.com/api/v4/", "https://git.example.com"),
    ],
)
def test_gitlab_com_and_self_managed_addresses_lead_to_their_api(given: str, root: str) -> None:
    assert gitlab_root_url(given) == root


def test_a_subgroup_project_is_addressed_by_its_encoded_path() -> None:
    from tether.forge.gitlab import _project_path

    assert _project_path(RepoRef("platform/team", "gitops"), "/merge_requests") == (
        "/projects/platform%2Fteam%2Fgitops/merge_requests"
    )


def test_a_next_page_on_another_host_is_not_followed_with_the_token() -> None:
    with pytest.raises(ForgeError, match="refused so the token is not sent there") as caught:
        _replayed(["gitlab/foreign-link.yaml"], lambda forge: forge.comment(REPO, 7, "x", key="k"))
    assert "http://gitlab.elsewhere.example/api/v4/projects/321/merge_requests/7/notes" in str(
        caught.value
    )
    assert "page=2" not in str(caught.value)


def test_a_rate_limit_without_retry_after_waits_until_its_reset_time() -> None:
    pauses = Pauses()
    now = 1795822850.0  # ten seconds before the recorded RateLimit-Reset

    def transport(origin: str) -> ForgeHttp:
        return ForgeHttp(
            origin,
            "/api/v4",
            StaticToken(TOKEN),
            QUICK,
            sleep=pauses,
            auth_scheme="Bearer",
            clock=lambda: now,
        )

    async def read(http: ForgeHttp) -> Any:
        return await http.request(
            "GET", "/projects/platform%2Fgitops/merge_requests/7", what="reading !7"
        )

    assert replayed(["gitlab/rate-limit-reset.yaml"], TOKEN, transport, read)["iid"] == 7
    assert pauses.taken == [10.0]
