"""Sources of one team cannot hold up or read another team's, with the agent's own
``SourceWorkers`` (what ``tether agent`` runs) on the real control plane, real git and real
loopback servers, across two namespaces:

- Medium (issue #12): eight hung fetches of one namespace delayed another team's webhook deploy
  by 118 s. Now fetches run in per-namespace slots and each has a deadline that kills git and
  names the URL and ref.
- A commit fetched with one team's credentials was served from the shared cache to a team that
  named the same URL and the commit's SHA without any: each namespace now has its own cache.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import apply_yaml
from tests.conftest import Kubectl
from tests.security.sources_servers import PrivateGitHost, SilentHost
from tests.source.gitrepo import Origin
from tether.agent.alerts import AlertQueue
from tether.agent.settings import AgentSettings
from tether.agent.sources import SourceWorkers
from tether.agent.state import Fleet, SourceState
from tether.agent.status import StatusWriter
from tether.agent.wakeup import wake_local
from tether.agent.webhooks import normalise
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load
from tether.devcluster.controlplane import DevCluster

pytestmark = pytest.mark.cluster

PASSWORD = "team-b-password/#?"
HUNG = 8
SLOTS = 2


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_CACHE_DIR", str(tmp_path / "agent-cache"))


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    return name


@pytest.fixture
def private_host(tmp_path: Path) -> Iterator[tuple[PrivateGitHost, Origin]]:
    origin = Origin(tmp_path / "origin")
    origin.commit({"app/cm.yaml": "kind: ConfigMap\n"}, message="first")
    bare = origin.bare_clone(tmp_path / "served" / "repo.git")
    host = PrivateGitHost(bare, "tether", PASSWORD)
    with host.running():
        yield host, origin


def source(namespace: str, name: str, url: str, ref: str, extra: str = "") -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{url: {json.dumps(url)}, interval: 1h, ref: {ref}{extra}}}
---
"""


def credentials(namespace: str) -> str:
    return f"""apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: {namespace}}}
stringData: {{username: tether, password: {json.dumps(PASSWORD)}}}
---
"""


async def until(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """Poll ``check`` until it is truthy (the bound only stops a broken test from hanging)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if value := check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def git_processes_for(url_part: str) -> list[str]:
    """Command lines of running processes that name ``url_part`` (git, git-remote-http)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if url_part in text and "git" in text:
            found.append(text)
    return found


def run_workers(
    kubectl: Kubectl,
    kubeconfig: Path,
    settings: AgentSettings,
    test: Callable[[SourceWorkers, Callable[[str], Awaitable[None]]], Awaitable[None]],
) -> None:
    """Run ``test`` with the agent's GitSource workers; ``add(namespace)`` hands them that
    namespace's GitSources as the informer would."""

    async def main() -> None:
        async with KubeClient(load(kubeconfig)) as client:
            fleet = Fleet()
            workers = SourceWorkers(
                client, fleet, StatusWriter(client), AlertQueue(client, 100), settings
            )

            async def add(namespace: str) -> None:
                listed = kubectl("get", "gitsources.tether.dev", "-n", namespace, "-o", "json")
                for item in json.loads(listed.stdout)["items"]:
                    await workers.on_event("ADDED", item)

            try:
                await test(workers, add)
            finally:
                for state in fleet.sources.values():
                    if state.task:
                        state.task.cancel()
                workers.slots.close()

    asyncio.run(main())


def test_hung_fetches_of_one_namespace_do_not_delay_another(
    dev_cluster: DevCluster,
    tether_crds: None,
    kubectl: Kubectl,
    namespace: str,
    other_namespace: str,
    private_host: tuple[PrivateGitHost, Origin],
) -> None:
    host, origin = private_host
    noisy, team_b = other_namespace, namespace
    silent = SilentHost()
    with silent.running():
        hung = "".join(
            source(noisy, f"hung-{i}", f"{silent.base}/hung-{i}.git", "{branch: main}")
            for i in range(HUNG)
        )
        apply_yaml(kubectl, hung)
        apply_yaml(
            kubectl,
            credentials(team_b)
            + source(team_b, "deploy", host.url, "{branch: main}", ", secretRef: {name: creds}"),
        )
        settings = AgentSettings(
            identity="test",
            fetch_timeout=15,
            fetches_per_namespace=SLOTS,
            loopback_http_credentials=True,
        )

        async def test(workers: SourceWorkers, add: Callable[[str], Awaitable[None]]) -> None:
            fleet = workers.fleet
            await add(noisy)
            await until(lambda: silent.open() == SLOTS, "the noisy team's fetches to hang")
            noisy_states = [fleet.sources[f"{noisy}/hung-{i}"] for i in range(HUNG)]

            await add(team_b)
            deploy = fleet.sources[f"{team_b}/deploy"]
            await until(lambda: deploy.revision, "team B's fetch", 60)
            # a push, announced by a webhook, while the noisy team's fetches still hang
            pushed = origin.commit({"app/cm.yaml": "kind: ConfigMap\n# v2\n"}, message="v2")
            origin.git("push", "--quiet", str(host.root / "repo.git"), "main")
            assert wake_local(fleet, {normalise(host.url)}) == [f"{team_b}/deploy"]
            await until(
                lambda: deploy.revision and deploy.revision.commit == pushed, "the webhook fetch"
            )
            assert all(not s.error and s.revision is None for s in noisy_states), [
                s.error for s in noisy_states
            ]
            assert silent.accepted == SLOTS  # the other six wait for their namespace's slots

            first = await until(
                lambda: next((s for s in noisy_states if s.error), None), "the deadline"
            )
            await _check_timed_out(first, silent.base)
            await until(lambda: silent.accepted > SLOTS, "the next noisy fetch to get a slot")

        run_workers(kubectl, dev_cluster.kubeconfig_path, settings, test)


async def _check_timed_out(state: SourceState, base: str) -> None:
    url = f"{base}/{state.spec.name}.git"
    assert state.error.startswith(f"timed out fetching {url} (ref main)"), state.error
    assert "did not finish within 15s" in state.error
    assert git_processes_for(url) == []  # git and its http helper were killed


def test_a_commit_fetched_with_one_teams_credentials_is_not_served_to_another(
    dev_cluster: DevCluster,
    tether_crds: None,
    kubectl: Kubectl,
    namespace: str,
    other_namespace: str,
    private_host: tuple[PrivateGitHost, Origin],
) -> None:
    host, origin = private_host
    owner, intruder = namespace, other_namespace
    commit = origin.head()
    apply_yaml(
        kubectl,
        credentials(owner)
        + source(owner, "private", host.url, "{branch: main}", ", secretRef: {name: creds}"),
    )
    settings = AgentSettings(identity="test", loopback_http_credentials=True)

    async def test(workers: SourceWorkers, add: Callable[[str], Awaitable[None]]) -> None:
        await add(owner)
        owned = workers.fleet.sources[f"{owner}/private"]
        await until(lambda: owned.revision, "the owner's fetch")
        assert owned.revision is not None and owned.revision.commit == commit
        apply_yaml(kubectl, source(intruder, "copy", host.url, f"{{commit: {commit}}}"))
        await add(intruder)
        copy = workers.fleet.sources[f"{intruder}/copy"]
        await until(lambda: copy.error, "the intruder's fetch to fail")
        assert copy.revision is None
        assert "Authentication failed" in copy.error or "401" in copy.error, copy.error

    run_workers(kubectl, dev_cluster.kubeconfig_path, settings, test)
