"""Forge URLs and tokens: credentials written into URLs are refused, tokens never echoed."""

from __future__ import annotations

import pytest

from tether.errors import ForgeError
from tether.forge import RepoRef, StaticToken
from tether.forge.transport import plain_base_url


def test_a_url_with_credentials_is_refused_without_showing_them() -> None:
    with pytest.raises(ForgeError) as caught:
        plain_base_url("https://bot:s3cret-token@git.example.com/")
    assert "s3cret-token" not in str(caught.value)
    assert "https://***@git.example.com" in str(caught.value)
    assert "token file" in str(caught.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://git.example.com/", "https://git.example.com"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("https://example.com/gitea/", "https://example.com/gitea"),
    ],
)
def test_a_base_url_is_kept_without_its_trailing_slash(given: str, expected: str) -> None:
    assert plain_base_url(given) == expected


def test_a_non_http_url_is_refused() -> None:
    with pytest.raises(ForgeError, match="not an http"):
        plain_base_url("git@example.com:org/repo.git")


def test_a_repository_is_written_owner_slash_name() -> None:
    assert RepoRef.parse("team/gitops.git") == RepoRef("team", "gitops")
    with pytest.raises(ValueError, match="owner/name"):
        RepoRef.parse("gitops")


def test_a_static_token_does_not_show_in_its_repr() -> None:
    token = StaticToken("s3cret-token", username="bot")
    assert "s3cret-token" not in repr(token)
    assert token.current() == ("bot", "s3cret-token")
