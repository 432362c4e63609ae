"""The GitHub driver against recorded contracts (a stand-in for GitHub, which cannot run here):
the revert pull request opened once however often it is asked for, keyed comments edited in
place across pages, commit statuses, merge state, and refusals, rate limits and outages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from tests.forge.conftest import QUICK
from tests.forge.contracts.replay import Pauses, replayed
from tests.forge.recorded import BAD, GOOD, REPO, REVERT, ROLLOUT, revert_request
from tether.errors import ForgeError, ForgeUnreachable
from tether.forge import (
    Comment,
    CommitState,
    CommitStatus,
    GitHubForge,
    PullRequest,
    PullState,
    StaticToken,
    revert_branch,
)
from tether.forge.github import github_api_url

TOKEN = "ghp_contractTestToken0000000000000000000"
_T = TypeVar("_T")


def _replayed(
    contracts: list[str], act: Callable[[GitHubForge], Awaitable[_T]], pauses: Pauses | None = None
) -> _T:
    # A GitHub Enterprise Server address: the driver adds /api/v3 itself.
    def driver(origin: str) -> GitHubForge:
        return GitHubForge(origin, StaticToken(TOKEN), QUICK, sleep=pauses or Pauses())

    return replayed(contracts, TOKEN, driver, act)


def test_a_revert_is_opened_once_however_often_it_is_asked_for() -> None:
    async def twice(forge: GitHubForge) -> tuple[PullRequest, PullRequest]:
        return await forge.open_change(revert_request()), await forge.open_change(revert_request())

    first, again = _replayed(["github/open-revert.yaml", "github/open-revert-again.yaml"], twice)
    assert (first.number, first.state, first.head, first.base, first.head_sha) == (
        42,
        PullState.OPEN,
        "tether/revert-9fceb02d0ae5",
        "main",
        REVERT,
    )
    assert first.url == "https://github.example.com/platform/gitops/pull/42"
    assert again.number == first.number
    assert again.merge_commit is None  # an open pull request's test merge is not a merge commit


def test_an_interrupted_revert_is_finished_without_committing_twice() -> None:
    pull = _replayed(
        ["github/resume-after-commit.yaml"], lambda forge: forge.open_change(revert_request())
    )
    assert (pull.number, pull.head_sha) == (42, REVERT)


def test_a_keyed_comment_is_edited_in_place_and_never_posted_twice() -> None:
    text = "Analysis run 2: error rate 7.5 %"

    async def comments(forge: GitHubForge) -> list[Comment]:
        return [
            await forge.comment(REPO, 42, text, key="analysis-run-2"),
            await forge.comment(REPO, 42, text, key="analysis-run-2"),
            await forge.comment(REPO, 42, "Stable restored in 4 s", key=f"restored-{BAD[:12]}"),
        ]

    edited, again, restored = _replayed(["github/comments.yaml"], comments)
    assert edited.id == again.id == 1002
    assert edited.body.startswith(text)
    assert (restored.id, restored.url.rpartition("#")[2]) == (1003, "issuecomment-1003")


def test_failing_and_successful_statuses_are_set_and_read_back() -> None:
    failing = CommitStatus(
        CommitState.FAILURE, "tether/analysis", "error rate 7.5 % > 1 %", ROLLOUT
    )

    async def statuses(forge: GitHubForge) -> list[CommitStatus]:
        await forge.set_commit_status(REPO, BAD, failing)
        await forge.set_commit_status(
            REPO, GOOD, CommitStatus(CommitState.SUCCESS, "tether/analysis")
        )
        return await forge.commit_statuses(REPO, BAD)

    assert _replayed(["github/statuses.yaml"], statuses) == [
        failing,
        CommitStatus(CommitState.SUCCESS, "ci/build"),
    ]


def test_a_merged_pull_request_has_its_merge_commit_and_a_closed_one_none() -> None:
    async def pulls(forge: GitHubForge) -> list[PullRequest]:
        return [
            await forge.pull_request(REPO, 42),
            await forge.pull_request(REPO, 41),
            *await forge.find_pull_requests(REPO, revert_branch(BAD)),
        ]

    merged, closed, *every = _replayed(["github/pulls.yaml"], pulls)
    assert (merged.state, merged.merge_commit) == (
        PullState.MERGED,
        "e5bd3914e2e596debea16f433f57875b5b90bcd6",
    )
    assert (closed.state, closed.merge_commit) == (PullState.CLOSED, None)
    assert [(pull.number, pull.state) for pull in every] == [
        (42, PullState.MERGED),
        (40, PullState.CLOSED),
    ]


def test_a_missing_permission_is_not_mistaken_for_a_rate_limit() -> None:
    pauses = Pauses()
    failing = CommitStatus(CommitState.FAILURE, "tether/analysis")
    with pytest.raises(ForgeError, match="lacks permission") as caught:
        _replayed(
            ["github/forbidden.yaml"],
            lambda forge: forge.set_commit_status(REPO, BAD, failing),
            pauses,
        )
    assert caught.value.status == 403
    assert not isinstance(caught.value, ForgeUnreachable)
    assert pauses.taken == []


def test_rate_limited_requests_wait_as_asked_then_go_through_even_for_a_comment() -> None:
    pauses = Pauses()
    posted = _replayed(
        ["github/rate-limited.yaml"],
        lambda forge: forge.comment(REPO, 42, "A person asked for a retry"),
        pauses,
    )
    assert posted.id == 1004
    assert pauses.taken == [7.0, 3.0]


def test_a_rate_limit_reset_far_ahead_is_unreachable_at_once() -> None:
    pauses = Pauses()
    with pytest.raises(ForgeUnreachable, match="rate-limits this token") as caught:
        _replayed(
            ["github/rate-limit-exhausted.yaml"], lambda forge: forge.pull_request(REPO, 42), pauses
        )
    assert caught.value.status == 403
    assert pauses.taken == []


@pytest.mark.parametrize(
    ("given", "api"),
    [
        ("https://github.com", "https://api.github.com"),
        ("https://api.github.com/", "https://api.github.com"),
        ("https://ghe.example.com", "https://ghe.example.com/api/v3"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com/api/v3"),
    ],
)
def test_github_com_and_enterprise_addresses_lead_to_their_api(given: str, api: str) -> None:
    assert github_api_url(given) == api


def test_the_forge_and_its_auth_show_no_token() -> None:
    async def scenario() -> str:
        async with GitHubForge("https://github.com", StaticToken(TOKEN)) as forge:
            return repr(forge) + repr(vars(forge)) + repr(vars(forge._http))

    assert TOKEN not in asyncio.run(scenario())


def test_the_replay_fails_a_driver_that_strays_from_its_contract() -> None:
    """The recorded contract is strict: a request it has no exchange for fails the test (and
    the failure shows no token), as does an exchange never asked for."""
    with pytest.raises(pytest.fail.Exception) as caught:
        _replayed(["github/bad-gateway.yaml"], lambda forge: forge.pull_request(REPO, 41))
    report = str(caught.value)
    assert "GET /api/v3/repos/platform/gitops/pulls/41" in report
    assert "does not match github/bad-gateway.yaml exchange 1" in report
    assert "exchange 2 (Get a pull request, answered) was never asked for" in report
    assert TOKEN not in report


class RotatingToken:
    """A token source whose token changes after each request, as a rotated token file does."""

    def __init__(self, *tokens: str) -> None:
        self._tokens = list(tokens)

    def current(self) -> tuple[str, str]:
        token = self._tokens[0]
        if len(self._tokens) > 1:
            self._tokens.pop(0)
        return "x-access-token", token


def test_the_token_is_asked_for_on_every_request() -> None:
    rotated = "ghs_rotatedInstallationToken2222222222"

    def driver(origin: str) -> GitHubForge:
        return GitHubForge(origin, RotatingToken(TOKEN, rotated), QUICK, sleep=Pauses())

    async def twice(forge: GitHubForge) -> list[int]:
        return [(await forge.pull_request(REPO, 42)).number for _ in range(2)]

    assert replayed(["github/rotated-token.yaml"], TOKEN, driver, twice) == [42, 42]


def test_a_status_on_a_commit_github_does_not_have_asks_whether_it_was_pushed() -> None:
    pauses = Pauses()
    unknown = "0000000000000000000000000000000000000bad"
    failing = CommitStatus(CommitState.FAILURE, "tether/analysis")
    with pytest.raises(ForgeError) as caught:
        _replayed(
            ["github/unknown-commit.yaml"],
            lambda forge: forge.set_commit_status(REPO, unknown, failing),
            pauses,
        )
    assert caught.value.status == 422
    assert "No commit found for SHA" in str(caught.value)
    assert "was commit 000000000000 pushed to platform/gitops?" in str(caught.value)
    assert pauses.taken == []
