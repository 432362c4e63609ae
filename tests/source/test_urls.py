"""URL parsing, credential masking and cache naming (pure, no git)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import SourceError
from tether.source import mask_url
from tether.source.urls import mask_text, parse_remote


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://user:secret@host/x", "https://user:***@host/x"),
        ("https://ghp_token123@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
        ("http://user:p%40ss@127.0.0.1:8080/r.git", "http://user:***@127.0.0.1:8080/r.git"),
        ("https://user:@host/x", "https://user:***@host/x"),
        ("https://host/x@y", "https://host/x@y"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("ssh://git@host:22/org/repo.git", "ssh://git@host:22/org/repo.git"),
        ("ssh://git:hunter22@host/org/repo.git", "ssh://git:***@host/org/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("deploy:hunter22@host:org/repo.git", "deploy:***@host:org/repo.git"),
        ("/srv/git/repo", "/srv/git/repo"),
        ("./relative/repo", "./relative/repo"),
        ("file:///srv/git/repo.git", "file:///srv/git/repo.git"),
        ("HTTPS://u:tok@Host/x?q=1#frag", "HTTPS://u:***@Host/x?q=1#frag"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_mask_text_masks_urls_and_literal_secrets() -> None:
    text = "fatal: unable to access 'https://bob:hunter22@h/x/': hunter22 rejected"
    masked = mask_text(text, ("hunter22",))
    assert "hunter22" not in masked
    assert "https://bob:***@h/x/" in masked


def test_http_credentials_leave_the_location_and_display() -> None:
    remote = parse_remote("https://alice:s3cret-token@Git.Example.com/org/repo.git/")
    assert remote.display == "https://alice:***@git.example.com/org/repo.git"
    assert remote.location == "https://git.example.com/org/repo.git"
    assert (remote.username, remote.password) == ("alice", "s3cret-token")
    assert remote.host == "https://git.example.com"
    assert "s3cret-token" not in repr(remote)
    assert remote.scrub("token s3cret-token leaked") == "token *** leaked"


def test_token_only_userinfo_is_the_username_and_a_secret() -> None:
    remote = parse_remote("https://ghp_abcdef@github.com/org/repo.git")
    assert remote.display == "https://***@github.com/org/repo.git"
    assert (remote.username, remote.password) == ("ghp_abcdef", "")
    assert "ghp_abcdef" not in remote.cache_name


def test_percent_encoded_credentials_are_decoded_for_git_and_masked_both_ways() -> None:
    remote = parse_remote("https://bob:p%40ss%2Fword@host/x.git")
    assert remote.password == "p@ss/word"
    assert remote.scrub("p%40ss%2Fword and p@ss/word") == "*** and ***"


def test_cache_name_ignores_the_password_but_not_the_repository() -> None:
    one = parse_remote("https://bob:old-token@host/org/repo.git")
    rotated = parse_remote("https://bob:new-token@host/org/repo.git")
    other = parse_remote("https://bob:old-token@host/org/other.git")
    assert one.cache_name == rotated.cache_name
    assert one.cache_name != other.cache_name
    assert one.cache_name.startswith("host-org-repo-")
    assert "token" not in one.cache_name


def test_local_paths_and_file_urls_share_an_identity(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    by_path = parse_remote(str(repo))
    by_url = parse_remote(f"file://{repo}")
    assert by_path.local and by_url.local
    assert by_path.display == str(repo.resolve())
    assert by_path.cache_name == by_url.cache_name


def test_relative_path_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_remote("repo").display == str(tmp_path.resolve() / "repo")


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("git@github.com:org/repo.git", False),
        ("host:repo", False),
        ("./dir:with-colon/repo", True),
        ("ssh://host/repo", False),
        ("repo", True),
    ],
)
def test_scp_like_versus_local(url: str, local: bool) -> None:
    assert parse_remote(url).local is local


@pytest.mark.parametrize("url", ["", "   ", "https://h/x\n--upload-pack=evil"])
def test_invalid_urls(url: str) -> None:
    with pytest.raises(SourceError, match="invalid source URL"):
        parse_remote(url)


def test_line_break_in_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(SourceError) as caught:
        parse_remote("https://bob:abc%0Adef@host/x.git")
    assert "abc" not in str(caught.value)
