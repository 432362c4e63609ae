"""What the GitHub and GitLab drivers do alike against their recorded contracts: a refused
token is a clear error that never shows it, a 502 is retried after the backoff, and a forge
that does not answer is unreachable after the retries (each case names its forge's paths)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.forge.conftest import QUICK
from tests.forge.contracts.replay import Pauses, replayed
from tests.forge.recorded import BAD, REPO
from tether.errors import ForgeError, ForgeUnreachable
from tether.forge import (
    CommitState,
    CommitStatus,
    ForgeSettings,
    GitHubForge,
    GitLabForge,
    PullState,
    StaticToken,
)

Driver = GitHubForge | GitLabForge


@dataclass(frozen=True)
class Recorded:
    """One forge's recorded contracts and how its API names what the tests ask for."""

    contracts: str  # the folder of its contracts
    make: Callable[[str, StaticToken, ForgeSettings, Pauses], Driver]
    token: str
    number: int  # of the pull (merge) request in its contracts
    repo_api: str  # the repository's API path after the forge's address
    pull_api: str  # the pull (merge) request's path after ``repo_api``
    refusal: str  # what the forge says when it refuses the token

    def driver(self, origin: str, pauses: Pauses | None = None) -> Driver:
        return self.make(origin, StaticToken(self.token), QUICK, pauses or Pauses())


GITHUB = Recorded(
    "github",
    lambda origin, token, settings, pauses: GitHubForge(origin, token, settings, sleep=pauses),
    "ghp_contractTestToken0000000000000000000",
    42,
    "/api/v3/repos/platform/gitops",
    "/pulls/42",
    "Bad credentials",
)
GITLAB = Recorded(
    "gitlab",
    lambda origin, token, settings, pauses: GitLabForge(origin, token, settings, sleep=pauses),
    "glpat-contractTestToken000000",
    7,
    "/api/v4/projects/platform%2Fgitops",
    "/merge_requests/7",
    "401 Unauthorized",
)
FORGES = pytest.mark.parametrize("forge", [GITHUB, GITLAB], ids=lambda forge: forge.contracts)


@FORGES
def test_a_refused_token_is_a_clear_error_that_never_shows_it(forge: Recorded) -> None:
    with pytest.raises(ForgeError) as caught:
        replayed(
            [f"{forge.contracts}/unauthorized.yaml"],
            forge.token,
            forge.driver,
            lambda driver: driver.pull_request(REPO, forge.number),
        )
    error = caught.value
    assert not isinstance(error, ForgeUnreachable)
    assert error.status == 401
    assert forge.refusal in str(error)
    assert "token was refused" in str(error)
    assert forge.repo_api + forge.pull_api in str(error)
    assert forge.token not in str(error) and forge.token not in repr(error)


@FORGES
def test_a_502_is_retried_after_the_backoff(forge: Recorded) -> None:
    pauses = Pauses()
    pull = replayed(
        [f"{forge.contracts}/bad-gateway.yaml"],
        forge.token,
        lambda origin: forge.driver(origin, pauses),
        lambda driver: driver.pull_request(REPO, forge.number),
    )
    assert pull.state is PullState.OPEN
    assert pauses.taken == [QUICK.backoff]


@FORGES
def test_a_forge_that_does_not_answer_is_unreachable(forge: Recorded) -> None:
    pauses = Pauses()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the socket is closed
    failing = CommitStatus(CommitState.FAILURE, "tether/analysis")
    with pytest.raises(ForgeUnreachable, match="connection refused") as caught:
        replayed(
            [],
            forge.token,
            lambda _: forge.driver(f"http://127.0.0.1:{port}", pauses),
            lambda driver: driver.set_commit_status(REPO, BAD, failing),
        )
    assert f"127.0.0.1:{port}{forge.repo_api}/statuses/{BAD}" in str(caught.value)
    assert len(pauses.taken) == QUICK.attempts - 1
    assert forge.token not in str(caught.value)
