"""Choosing a forge driver: by the kind written down, or by a URL that can only be one forge."""

from __future__ import annotations

import asyncio

import pytest

from tether.errors import ForgeError
from tether.forge import (
    ForgeKind,
    GiteaForge,
    GitHubForge,
    GitLabForge,
    StaticToken,
    forge_for,
    revert_branch,
)
from tether.forge.kinds import forge_kind


@pytest.mark.parametrize(
    ("kind", "url", "driver", "api"),
    [
        ("gitea", "https://git.example.com", GiteaForge, "https://git.example.com"),
        ("", "https://git.example.com/api/v1", GiteaForge, "https://git.example.com"),
        ("github", "https://github.com", GitHubForge, "https://api.github.com"),
        ("GitHub", "https://ghe.example.com", GitHubForge, "https://ghe.example.com/api/v3"),
        ("", "https://ghe.example.com/api/v3", GitHubForge, "https://ghe.example.com/api/v3"),
        ("", "https://github.com/", GitHubForge, "https://api.github.com"),
        ("gitlab", "https://git.example.com/gitlab", GitLabForge, "https://git.example.com/gitlab"),
        ("", "https://gitlab.com", GitLabForge, "https://gitlab.com"),
        ("", "https://git.example.com/api/v4", GitLabForge, "https://git.example.com"),
    ],
)
def test_a_forge_is_chosen_by_its_kind_or_a_url_that_says_it(
    kind: str, url: str, driver: type, api: str
) -> None:
    async def chosen() -> tuple[type, str]:
        forge = forge_for(kind, url, StaticToken("t0ken-not-shown"))
        try:
            return type(forge), forge.base_url
        finally:
            await forge.close()

    assert asyncio.run(chosen()) == (driver, api)


def test_a_plain_self_hosted_address_needs_its_kind() -> None:
    with pytest.raises(ForgeError) as caught:
        forge_kind("", "https://git.example.com/")
    assert "cannot tell which forge runs at https://git.example.com;" in str(caught.value)
    assert forge_kind("gitlab", "https://git.example.com/") is ForgeKind.GITLAB


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ForgeError) as caught:
        forge_kind("bitbucket", "https://bitbucket.org")
    assert "'bitbucket'" in str(caught.value)
    assert "gitea, github, gitlab" in str(caught.value)


def test_a_url_with_credentials_is_refused_whatever_the_kind() -> None:
    with pytest.raises(ForgeError) as caught:
        forge_for("github", "https://bot:ghp_secret@github.com", StaticToken("x"))
    assert "ghp_secret" not in str(caught.value)


def test_the_revert_branch_is_named_after_the_bad_commit_whatever_the_forge() -> None:
    assert revert_branch("9fceb02d0ae598e95dc970b74767f19372d61af8") == "tether/revert-9fceb02d0ae5"
