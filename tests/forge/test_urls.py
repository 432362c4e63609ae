"""Forge URLs and tokens: credentials written into URLs are refused, tokens never echoed."""

from __future__ import annotations

import asyncio

import pytest

from tether.errors import ForgeError, ForgeUnreachable
from tether.forge import GiteaForge, RepoRef, StaticToken
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


class _OneAnswer:
    """A loopback HTTP server that gives every request the same raw answer."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self.answer)
        await writer.drain()
        writer.close()

    async def ask(self) -> ForgeError:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with GiteaForge(f"http://127.0.0.1:{port}", StaticToken("t")) as forge:
                with pytest.raises(ForgeError) as caught:
                    await forge.pull_request(RepoRef("team", "gitops"), 1)
                return caught.value
        finally:
            server.close()
            await server.wait_closed()


def test_a_redirect_is_refused_naming_where_it_leads() -> None:
    answer = (
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://git.example.com/new\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    error = asyncio.run(_OneAnswer(answer).ask())
    assert error.status == 301
    assert "redirected (HTTP 301) to https://git.example.com/new" in str(error)


def test_an_answer_that_is_not_json_is_an_error_not_a_crash() -> None:
    page = b"<html>Please log in</html>"
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
        + str(len(page)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + page
    )
    error = asyncio.run(_OneAnswer(answer).ask())
    assert not isinstance(error, ForgeUnreachable)
    assert "not JSON" in str(error)
