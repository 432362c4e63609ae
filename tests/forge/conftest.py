"""Fixtures for the forge tests: one real Gitea for the session, repositories in it pushed with
real git, and a loopback proxy that can delay or fail what passes through it."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.hermetic import hermetic_git  # noqa: F401  (fixture)
from tether.devcluster.gitea import LocalGitea
from tether.forge import ForgeSettings, GiteaForge, RepoRef, StaticToken

QUICK = ForgeSettings(attempt_timeout=10.0, attempts=3, backoff=0.05, max_backoff=0.2)
"""Short pauses between retries, so the failure tests do not wait for nothing."""


@pytest.fixture(scope="session")
def gitea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGitea]:
    """A real Gitea on 127.0.0.1, started once for the session and stopped at its end."""
    server = LocalGitea(tmp_path_factory.mktemp("gitea")).start()
    try:
        yield server
    finally:
        server.stop()


def make_forge(url: str, token: str, settings: ForgeSettings = QUICK) -> GiteaForge:
    return GiteaForge(url, StaticToken(token), settings)


@dataclass
class ForgeRepo:
    """A repository in the test Gitea plus a working copy that pushes to it with real git."""

    gitea: LocalGitea
    ref: RepoRef
    work: Path

    @property
    def api(self) -> str:
        return f"{self.gitea.url}/api/v1/repos/{self.ref}"

    @property
    def push_url(self) -> str:
        admin = self.gitea.admin
        return f"http://{admin.username}:{admin.token}@127.0.0.1:{self.gitea.port}/{self.ref}.git"

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.work), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    def commit(self, files: dict[str, str], message: str) -> str:
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def push(self, refspec: str = "main") -> None:
        self.git("push", "-q", self.push_url, refspec)

    def fetch(self, branch: str) -> str:
        """Fetch ``branch`` from Gitea with git; its head commit."""
        self.git("fetch", "-q", self.push_url, f"+refs/heads/{branch}:refs/remotes/gitea/{branch}")
        return self.git("rev-parse", f"refs/remotes/gitea/{branch}")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.api}{path}", headers=self.gitea_headers, timeout=30)

    @property
    def gitea_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.gitea.admin.token}"}

    def merge(self, number: int) -> None:
        """Merge pull request ``number`` as a person would (Gitea checks mergeability in the
        background first, answering 405 until it is done)."""
        for _ in range(100):
            response = httpx.post(
                f"{self.api}/pulls/{number}/merge",
                json={"Do": "merge"},
                headers=self.gitea_headers,
                timeout=30,
            )
            if response.status_code == 200:
                return
            if response.status_code not in (405, 409):
                raise AssertionError(f"merge of #{number}: {response.status_code} {response.text}")
            time.sleep(0.2)
        raise AssertionError(f"#{number} never became mergeable: {response.text}")


@pytest.fixture
def forge_repo(gitea: LocalGitea, tmp_path: Path) -> ForgeRepo:
    """A fresh repository ``tether-admin/<random>`` with an empty working copy on ``main``."""
    name = f"gitops-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{gitea.url}/api/v1/user/repos",
        json={"name": name, "default_branch": "main", "auto_init": False},
        headers={"Authorization": f"token {gitea.admin.token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    work = tmp_path / name
    work.mkdir()
    repo = ForgeRepo(gitea, RepoRef(gitea.admin.username, name), work)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.name", "Test Person")
    repo.git("config", "user.email", "person@example.invalid")
    return repo


class LoopbackProxy:
    """A TCP proxy on 127.0.0.1 in front of the test Gitea that counts the connections it
    accepts and can hold each one for ``delay`` seconds, or answer the first ``fail_first``
    with ``503``, before passing bytes through."""

    def __init__(self, upstream_port: int, *, delay: float = 0.0, fail_first: int = 0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.fail_first = fail_first
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> LoopbackProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            if self.connections <= self.fail_first:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
                await writer.drain()
                return
            await asyncio.sleep(self.delay)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._writers.append(up_writer)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
