"""The chart cache under faults: an agent killed while a package is downloading leaves no package
(partial or whole) in the cache, and of two agent replicas only the leader syncs; a package the
HelmSource resolved is synced exactly (a cache file that lost its bytes is fetched again and
checked against the digest the HelmSource saw)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.agent.conftest import (
    app_ready,
    apply_yaml,
    platform_project,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.conftest import Cli, GitRepo, Kubectl
from tests.helm.conftest import HelmRepository
from tests.helm.test_helmsource_agent import helm_app, values_repository
from tests.helm.test_sync import unique_group
from tether.agent.helmsources import pinned_fetcher
from tether.errors import SourceError
from tether.source import ChartArtifact, ChartSource, chart_cache_dir, fetch_chart

__all__ = ["start_agent", "tether_crds"]  # fixtures used here


class StallingRepository(HelmRepository):
    """A Helm repository that, while ``stalling`` is set, sends half of a package and then
    nothing more (the connection stays open): a download that never finishes."""

    def __init__(self, root: Path, helm: Path) -> None:
        self.stalling = threading.Event()
        self.stalling.set()
        super().__init__(root, helm)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if not (self.stalling.is_set() and request.path.endswith(".tgz")):
            return await super()._file(request)
        self.requests.append(request.path)
        body = (self.packages / request.match_info["name"]).read_bytes()
        response = web.StreamResponse(headers={"Content-Length": str(len(body))})
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        while self.stalling.is_set():
            await asyncio.sleep(0.1)
        return response


@pytest.fixture
def stalling_repository(tmp_path: Path, helm: Path) -> Iterator[StallingRepository]:
    repository = StallingRepository(tmp_path / "stalling-repo", helm)
    yield repository
    repository.stalling.clear()
    repository.close()


def test_an_agent_killed_mid_download_leaves_no_package_and_only_the_leader_syncs(
    start_agent,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    stalling_repository: StallingRepository,
    cli: Cli,
) -> None:
    repository = stalling_repository
    values_repository(repo)
    package = repository.publish_shop("1.0.0", unique_group())
    project = platform_project(kubectl, namespace)
    apply_yaml(kubectl, helm_app(namespace, repository.url, str(repo.root)) + project)
    cache = chart_cache_dir() / "tenants" / namespace

    first = start_agent("agent-a")
    wait_for(lambda: f"/charts/{package.name}" in repository.requests, 60, "the download")
    first.kill()  # mid-download
    assert not list(cache.glob("sha256-*.tgz"))  # nothing half-written is ever a package

    repository.stalling.clear()
    start_agent("agent-b")
    start_agent("agent-c")
    wait_for(lambda: app_ready(kubectl, namespace), 120, "the chart applied after the crash")
    [cached] = cache.glob("sha256-*.tgz")
    assert cached.read_bytes() == package.read_bytes()

    code, out, _ = cli("history", "web", "-n", namespace, "-o", "json")
    assert code == 0
    actors = {r["actor"] for r in json.loads(out) if r["result"] == "succeeded"}
    assert len(actors) == 1, actors  # one leader synced; the standby did nothing
    assert actors <= {"agent/agent-b", "agent/agent-c"}


def test_a_pinned_package_is_fetched_again_only_with_the_same_digest(
    helm_repository: HelmRepository, tmp_path: Path
) -> None:
    helm_repository.publish_shop("1.0.0", unique_group())
    source = ChartSource(helm_repository.url, "shop", "^1")
    cache = tmp_path / "cache"
    resolved = fetch_chart(source, cache)
    refetched: list[str] = []

    def fetch_again(version: str) -> ChartArtifact:
        refetched.append(version)
        return fetch_chart(ChartSource(helm_repository.url, "shop", version), cache)

    fetch = pinned_fetcher(resolved, fetch_again)
    assert fetch(source) == resolved and refetched == []  # from the cache, checked

    resolved.path.write_bytes(resolved.path.read_bytes()[:100])  # the cache file lost its bytes
    assert fetch(source).digest == resolved.digest
    assert refetched == ["1.0.0"]
    assert resolved.path.stat().st_size > 100  # whole again

    helm_repository.publish_shop("1.0.0", unique_group())  # same version, other bytes
    resolved.path.unlink()
    with pytest.raises(SourceError, match="nothing was applied") as refused:
        fetch(source)
    assert resolved.digest in str(refused.value)
