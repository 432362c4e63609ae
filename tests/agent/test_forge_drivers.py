"""The agent drives the forge ``GitSource.spec.forge.kind`` names: Gitea, GitHub or GitLab
(``tether.agent.quarantine.forge_driver``). GitHub is driven against its recorded contract
(``tests/forge/contracts``: GitHub cannot run here); GitLab's and Gitea's drivers are shown
built for the right API, and an unknown kind is a clear error."""

from __future__ import annotations

import asyncio

import pytest

from tests.forge.contracts.replay import replayed
from tether.agent.quarantine import forge_driver
from tether.agent.specs import ForgeSpec
from tether.errors import ForgeError
from tether.forge import (
    CommitState,
    CommitStatus,
    Forge,
    GiteaForge,
    GitHubForge,
    GitLabForge,
    RepoRef,
)

TOKEN = "ghp_contractTestToken0000000000000000000"
REPO = RepoRef("platform", "gitops")
BAD = "9fceb02d0ae598e95dc970b74767f19372d61af8"
GOOD = "1acc419d4d6a9ce985db7be48c6349a0475975b5"
ROLLOUT = "https://tether.example.com/apps/web/rollouts/12"


def spec(kind: str, url: str = "") -> ForgeSpec:
    return ForgeSpec(kind=kind, url=url, repository="", secret_name="forge-token")


def test_a_github_source_sets_and_reads_commit_statuses_through_github_s_api() -> None:
    failing = CommitStatus(
        CommitState.FAILURE, "tether/analysis", "error rate 7.5 % > 1 %", ROLLOUT
    )

    async def statuses(forge: Forge) -> list[CommitStatus]:
        assert isinstance(forge, GitHubForge)
        await forge.set_commit_status(REPO, BAD, failing)
        await forge.set_commit_status(
            REPO, GOOD, CommitStatus(CommitState.SUCCESS, "tether/analysis")
        )
        return await forge.commit_statuses(REPO, BAD)

    def driver(origin: str) -> Forge:  # a GitHub Enterprise Server at the replay's address
        return forge_driver(spec("github", origin), "https://git.example/platform/gitops", TOKEN)

    assert replayed(["github/statuses.yaml"], TOKEN, driver, statuses) == [
        failing,
        CommitStatus(CommitState.SUCCESS, "ci/build"),
    ]


@pytest.mark.parametrize(
    ("kind", "source_url", "driver_type", "api"),
    [
        ("github", "https://github.com/platform/gitops.git", GitHubForge, "https://api.github.com"),
        ("gitlab", "https://gitlab.com/platform/gitops.git", GitLabForge, "https://gitlab.com"),
        ("GitLab", "https://git.example/platform/gitops.git", GitLabForge, "https://git.example"),
        ("gitea", "http://127.0.0.1:3000/platform/gitops.git", GiteaForge, "http://127.0.0.1:3000"),
    ],
)
def test_each_kind_gets_its_driver_at_the_source_s_forge(
    kind: str, source_url: str, driver_type: type, api: str
) -> None:
    async def built() -> str:
        forge = forge_driver(spec(kind), source_url, "a-token")
        try:
            assert isinstance(forge, driver_type)
            return str(forge.base_url)
        finally:
            await forge.close()

    assert asyncio.run(built()).startswith(api)


def test_an_unknown_kind_says_which_are_known() -> None:
    with pytest.raises(ForgeError, match="gitea, github, gitlab"):
        forge_driver(spec("bitbucket"), "https://bitbucket.org/platform/gitops.git", "a-token")
