"""Health waits against the real control plane: one LIST per kind and poll, every object
re-checked until the whole set is Healthy together, and no hang on a kind without controller.

Requests are counted by a KubeClient subclass that counts every call of ``request`` (nothing
is mocked: every request still goes to the API server).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
import yaml

from tests.conftest import Kubectl
from tests.health.conftest import GROUP
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load
from tether.core import HealthReport, HealthStatus, Manifest
from tether.core.inventory import Inventory
from tether.devcluster.controlplane import DevCluster
from tether.reconcile import plan as planning
from tether.reconcile.engine import SyncEngine
from tether.reconcile.options import SyncOptions

pytestmark = pytest.mark.cluster

GADGET_CHECK = {
    "group": GROUP,
    "kind": "Gadget",
    "degraded": 'object.status.phase == "Failed"',
    "healthy": 'object.status.phase == "Ready"',
    "message": '"gadget is " + object.?status.?phase.orValue("new")',
}


class CountingClient(KubeClient):
    """A real client that counts the requests it sends, by method."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: Counter[str] = Counter()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent[method] += 1
        return await super().request(method, path, **kwargs)


def _member(body: dict[str, Any], app: str) -> dict[str, Any]:
    """``body`` labelled as a member of ``app``'s ApplySet, as a sync would label it."""
    labels = Inventory(app).member_labels()
    body["metadata"].setdefault("labels", {}).update(labels)
    return body


async def _planned(client: KubeClient, bodies: list[dict[str, Any]]) -> list[Any]:
    objects = []
    for body in bodies:
        obj = planning.PlannedObject(Manifest(body))
        obj.resource = await client.resource(body["apiVersion"], body["kind"])
        objects.append(obj)
    return objects


async def _create_all(client: KubeClient, bodies: list[dict[str, Any]], at_once: int = 16) -> None:
    """Create ``bodies`` (of one kind), ``at_once`` requests in flight."""
    resource = await client.resource(bodies[0]["apiVersion"], bodies[0]["kind"])
    gate = asyncio.Semaphore(at_once)

    async def create(body: dict[str, Any]) -> None:
        async with gate:
            await client.create(resource, body)

    await asyncio.gather(*(create(body) for body in bodies))


def _gadget(name: str, namespace: str, app: str) -> dict[str, Any]:
    return _member(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gadget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": 1},
        },
        app,
    )


def _set_phase(kubectl: Kubectl, namespace: str, name: str, phase: str) -> None:
    patch = json.dumps({"status": {"phase": phase}})
    kubectl(
        "patch",
        f"gadgets.{GROUP}",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    )


def test_a_wait_on_kinds_without_controller_ends_after_the_grace_period(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, test_crds: None
) -> None:
    app = f"{namespace}.nocontroller"
    certificate = _member(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": {"name": "shop-tls", "namespace": namespace},
            "spec": {"secretName": "shop-tls", "issuerRef": {"name": "letsencrypt"}},
        },
        app,
    )
    gadget = _gadget("plain", namespace, app)
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([certificate, gadget]))

    async def wait() -> HealthReport:
        options = SyncOptions(app=app, timeout=600, health_grace=2)
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            engine = SyncEngine(client, options)
            objects = await _planned(client, [certificate, gadget])
            # A generous bound: far below the 600 s timeout, far above the 2 s grace period.
            return await asyncio.wait_for(engine.wait_healthy(objects), 120)

    report = asyncio.run(wait())

    by_kind = {o.ref.kind: o for o in report.objects}
    assert by_kind["Certificate"].status is HealthStatus.DEGRADED
    assert "is the controller of Certificate.cert-manager.io installed and running?" in (
        by_kind["Certificate"].message
    )
    assert by_kind["Gadget"].status is HealthStatus.HEALTHY
    assert "taken as a kind without a controller" in by_kind["Gadget"].message


def test_every_object_is_rechecked_until_all_are_healthy_together(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, test_crds: None
) -> None:
    app = f"{namespace}.together"
    first, second = _gadget("first", namespace, app), _gadget("second", namespace, app)
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([first, second]))
    _set_phase(kubectl, namespace, "first", "Ready")
    _set_phase(kubectl, namespace, "second", "Provisioning")

    async def scenario() -> tuple[HealthReport, bool]:
        options = SyncOptions(app=app, timeout=600, health_checks=(GADGET_CHECK,))
        async with CountingClient(load(dev_cluster.kubeconfig_path)) as client:
            engine = SyncEngine(client, options)
            objects = await _planned(client, [first, second])
            waiting = asyncio.create_task(engine.wait_healthy(objects))

            async def polls(more: int) -> None:
                target = client.sent["GET"] + more
                while client.sent["GET"] < target:
                    await asyncio.sleep(0.05)

            await polls(2)  # "first" was seen Healthy
            await asyncio.to_thread(_set_phase, kubectl, namespace, "first", "Provisioning")
            await asyncio.to_thread(_set_phase, kubectl, namespace, "second", "Ready")
            await polls(4)  # several polls since: both have been Healthy, never together
            ended_early = waiting.done()
            await asyncio.to_thread(_set_phase, kubectl, namespace, "first", "Ready")
            return await asyncio.wait_for(waiting, 60), ended_early

    report, ended_early = asyncio.run(scenario())

    assert not ended_early
    assert report.status is HealthStatus.HEALTHY
    assert [o.message for o in report.objects] == ["gadget is Ready", "gadget is Ready"]


def test_a_thousand_object_wait_lists_each_kind_once_per_poll(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str
) -> None:
    app = f"{namespace}.many"
    bodies = [
        _member(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"settings-{n:04}", "namespace": namespace},
                "data": {"n": str(n)},
            },
            app,
        )
        for n in range(1000)
    ]

    async def wait() -> tuple[HealthReport, Counter[str]]:
        async with CountingClient(load(dev_cluster.kubeconfig_path)) as client:
            await _create_all(client, bodies)  # kubectl would take a minute, one at a time
            engine = SyncEngine(client, SyncOptions(app=app, timeout=60))
            objects = await _planned(client, bodies)
            client.sent.clear()
            return await engine.wait_healthy(objects), client.sent

    report, sent = asyncio.run(wait())

    assert report.status is HealthStatus.HEALTHY
    assert len(report.objects) == 1000
    # One poll: the cluster-wide checks ConfigMap, and the list in pages of 500 (two, or three
    # when the server hands out a continue token for an empty last page).
    assert set(sent) == {"GET"}
    assert sent["GET"] <= 4


def test_a_kind_the_app_may_get_but_not_list_is_read_by_name(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str
) -> None:
    app = f"{namespace}.getonly"
    bodies = [
        _member(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"settings-{n}", "namespace": namespace},
                "data": {"n": str(n)},
            },
            app,
        )
        for n in range(2)
    ]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(bodies))
    kubectl("create", "serviceaccount", "getter", "-n", namespace)
    kubectl("create", "role", "get-only", "-n", namespace, "--verb=get", "--resource=configmaps")
    kubectl(
        "create",
        "rolebinding",
        "getter",
        "-n",
        namespace,
        "--role=get-only",
        f"--serviceaccount={namespace}:getter",
    )

    async def wait() -> tuple[HealthReport, Counter[str]]:
        connection = load(dev_cluster.kubeconfig_path)
        async with (
            CountingClient(connection, impersonate=f"{namespace}/getter") as tenant,
            KubeClient(connection) as own,
        ):
            engine = SyncEngine(tenant, SyncOptions(app=app, timeout=60), inventory_client=own)
            objects = await _planned(own, bodies)
            tenant.sent.clear()
            return await engine.wait_healthy(objects), tenant.sent

    report, sent = asyncio.run(wait())

    assert report.status is HealthStatus.HEALTHY
    assert sent == Counter({"GET": 3})  # the refused list, then each object by name
