"""The client's watch pool and the agent's informer, in-process against the real API server:
open watches never take the connections that requests need, and a re-list reports what
vanished while nothing was watching (nothing gone is remembered)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Kubectl
from tether.agent.informer import Informer
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load
from tether.devcluster.controlplane import DevCluster

pytestmark = pytest.mark.cluster


async def _many_watches_then_requests(kubeconfig: str, namespace: str) -> int:
    async with KubeClient(load(kubeconfig), concurrency=2, timeout=10) as client:
        configmaps = await client.resource("v1", "ConfigMap")
        kinds = [configmaps, await client.resource("v1", "Secret")] * 6

        async def hold(resource: Any) -> None:
            async for _ in client.watch(resource, namespace, timeout_seconds=60):
                pass

        watches = [asyncio.create_task(hold(r)) for r in kinds]
        await asyncio.sleep(1)  # every watch is connected and waiting
        try:
            answered = 0
            for n in range(10):
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"c{n}", "namespace": namespace},
                    "data": {"n": str(n)},
                }
                await client.apply(configmaps, body, dry_run=False)
                answered += len(await client.list(configmaps, namespace)) > 0
            return answered
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)


def test_twelve_open_watches_leave_a_two_connection_client_working(
    dev_cluster: DevCluster, namespace: str
) -> None:
    answered = asyncio.run(
        asyncio.wait_for(
            _many_watches_then_requests(str(dev_cluster.kubeconfig_path), namespace), 60
        )
    )
    assert answered == 10


async def _follow(kubeconfig: str, namespace: str, kubectl: Kubectl) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    async with KubeClient(load(kubeconfig)) as client:

        async def handle(kind: str, obj: dict[str, Any]) -> None:
            seen.append((kind, obj["metadata"]["name"]))

        informer = Informer(
            client, await client.resource("v1", "ConfigMap"), handle, namespace=namespace
        )
        running = asyncio.create_task(informer.run())
        await informer.synced.wait()
        await asyncio.to_thread(kubectl, "create", "configmap", "live", "-n", namespace)
        while ("ADDED", "live") not in seen:
            await asyncio.sleep(0.05)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

        # While nothing watches: one object deleted, one created.
        await asyncio.to_thread(kubectl, "delete", "configmap", "gone", "-n", namespace)
        await asyncio.to_thread(kubectl, "create", "configmap", "late", "-n", namespace)
        seen.clear()
        informer.synced.clear()
        running = asyncio.create_task(informer.run())
        await informer.synced.wait()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        assert informer.lists == 2
    return seen


def test_a_relist_reports_what_vanished_while_nothing_watched(
    dev_cluster: DevCluster, namespace: str, kubectl: Kubectl
) -> None:
    kubectl("create", "configmap", "gone", "-n", namespace)
    kubectl("create", "configmap", "kept", "-n", namespace)
    seen = asyncio.run(
        asyncio.wait_for(_follow(str(dev_cluster.kubeconfig_path), namespace, kubectl), 60)
    )
    assert ("DELETED", "gone") in seen
    assert ("ADDED", "late") in seen
    assert ("MODIFIED", "kept") in seen
    assert not [name for kind, name in seen if name == "gone" and kind != "DELETED"]
