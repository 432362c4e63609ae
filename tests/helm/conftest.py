"""Fixtures of the Helm tests: the real helm (built once per machine by Tether's provisioning),
and a Helm HTTP repository served by a real aiohttp server on loopback over charts packaged with
``helm package`` and indexed with ``helm repo index``."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.helm.charts import helm_package, helm_repo_index, write_chart
from tether.devcluster.provision import ensure_binary


@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure_binary("helm")


class HelmRepository:
    """A Helm repository on 127.0.0.1: ``publish`` packages a chart version and re-indexes.

    With ``user``/``password`` set, every request needs that basic auth. ``requests`` lists the
    paths asked for, in order (to see what was downloaded and what came from the cache).
    """

    def __init__(self, root: Path, helm: Path, user: str = "", password: str = "") -> None:
        self.root, self.helm = root, helm
        self.packages = root / "packages"
        self.packages.mkdir(parents=True)
        self.user, self.password = user, password
        self.requests: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._started.wait(10)
        self.url = f"http://127.0.0.1:{self._port}/charts"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/charts/{name}", self._file)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self._port = self._runner.addresses[0][1]
        self._started.set()
        self._loop.run_forever()

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        if self.user:
            expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})
        path = self.packages / request.match_info["name"]
        if not path.is_file():
            return web.Response(status=404)
        return web.Response(body=path.read_bytes())

    def publish(self, chart: Path) -> Path:
        package = helm_package(self.helm, chart, self.packages)
        helm_repo_index(self.helm, self.packages, self.url)
        return package

    def publish_shop(self, version: str, group: str, *, extra: bool = False) -> Path:
        return self.publish(write_chart(self.root / "src" / version, version, group, extra=extra))

    def stop_serving(self) -> None:
        """Close the listening socket: from now on a connection is refused (not left hanging)."""
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def helm_repository(tmp_path: Path, helm: Path) -> Iterator[HelmRepository]:
    repository = HelmRepository(tmp_path / "helm-repo", helm)
    yield repository
    repository.close()


@pytest.fixture
def private_helm_repository(tmp_path: Path, helm: Path) -> Iterator[HelmRepository]:
    repository = HelmRepository(tmp_path / "private-repo", helm, "reader", "s3cret-repo-pass")
    yield repository
    repository.close()
