"""Traffic through a router: HTTPRoute weights and the stable/canary Services' selectors, set by
server-side apply as the App's identity against the real API server, with the Endpoints the
control plane derives from them checked independently."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest

from tests.conftest import Kubectl
from tests.delivery.signals import unready_image
from tether.cluster.client import ApiError, KubeClient
from tether.cluster.kubeconfig import load
from tether.core import Manifest
from tether.delivery import traffic
from tether.delivery.model import TRACK_LABEL, DeliveryError, GatewayRouting
from tether.devcluster.controlplane import DevCluster

ROUTING = GatewayRouting(http_route="web", stable_service="web-stable", canary_service="web-canary")
T = TypeVar("T")


def _route(*refs: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": list(refs),
                }
            ],
        },
    }


def _service(name: str, selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": selector or {"app": "web"}, "ports": [{"port": 80}]},
    }


def _deployment(name: str, image: str, replicas: int, extra: dict[str, str]) -> dict[str, Any]:
    labels = {"app": "web", **extra}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def _render() -> list[Manifest]:
    return [
        Manifest(_route({"name": "web-stable", "port": 80})),
        Manifest(_service("web-stable")),
        Manifest(_service("web-canary")),
        Manifest(_deployment("web", "web:v1", 2, {})),
    ]


# -- pure shaping ----------------------------------------------------------------------------


def test_a_rule_naming_only_stable_gains_a_canary_backend_at_its_weight() -> None:
    route = traffic.weigh_route(_route({"name": "web-stable", "port": 80}), ROUTING, 20)
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert refs == [
        {"name": "web-stable", "port": 80, "weight": 80},
        {"name": "web-canary", "port": 80, "weight": 20},
    ]
    assert traffic.route_weights(route, ROUTING) == (80, 20)
    again = traffic.weigh_route(route, ROUTING, 100)
    assert [r["weight"] for r in again["spec"]["rules"][0]["backendRefs"]] == [0, 100]


def test_backends_tether_does_not_steer_keep_their_weights() -> None:
    mirror = {"name": "web-legacy", "port": 80, "weight": 7}
    route = traffic.weigh_route(
        _route({"name": "web-stable", "port": 80}, {"name": "web-canary", "port": 80}, mirror),
        ROUTING,
        30,
    )
    assert route["spec"]["rules"][0]["backendRefs"][2] == mirror
    assert traffic.route_weights(route, ROUTING) == (70, 30)


def test_a_route_without_the_stable_service_is_refused_with_its_names() -> None:
    with pytest.raises(
        DeliveryError,
        match="HTTPRoute web: no rule has a backendRef to the stable Service 'web-stable'",
    ):
        traffic.weigh_route(_route({"name": "other", "port": 80}), ROUTING, 10)
    with pytest.raises(DeliveryError, match="0 to 100"):
        traffic.weigh_route(_route({"name": "web-stable", "port": 80}), ROUTING, 101)


def test_services_are_narrowed_and_missing_objects_are_named() -> None:
    shaped = traffic.shape_routing(_render(), traffic.Routing(ROUTING, 25, "abc123"))
    by_name = {(m.kind, m.body["metadata"]["name"]): m.body for m in shaped}
    assert by_name[("Service", "web-stable")]["spec"]["selector"] == {
        "app": "web",
        "pod-template-hash": "abc123",
    }
    assert by_name[("Service", "web-canary")]["spec"]["selector"] == {
        "app": "web",
        TRACK_LABEL: "canary",
    }
    assert by_name[("Deployment", "web")] == _deployment("web", "web:v1", 2, {})
    # the render itself is left as it was
    assert _render()[1].body["spec"]["selector"] == {"app": "web"}
    unknown = traffic.shape_routing(_render(), traffic.Routing(ROUTING, 0, None))
    assert {"app": "web"} in [m.body["spec"].get("selector") for m in unknown]
    without_canary = [m for m in _render() if m.body["metadata"]["name"] != "web-canary"]
    with pytest.raises(DeliveryError, match=r"web-canary named in trafficRouting\.gatewayAPI"):
        traffic.shape_routing(without_canary, traffic.Routing(ROUTING, 0, None))
    bare = Manifest({**_service("web-stable"), "spec": {"ports": [{"port": 80}]}})
    with pytest.raises(DeliveryError, match="Service web-stable: it has no selector"):
        traffic.shape_routing(
            [bare, *_render()[2:], _render()[0]], traffic.Routing(ROUTING, 0, None)
        )


def test_the_serving_hash_waits_for_the_current_replica_set() -> None:
    deployment = {
        "metadata": {"uid": "d1", "annotations": {traffic.REVISION_ANNOTATION: "2"}},
        "spec": {"replicas": 3},
    }

    def replica_set(revision: str, hash_: str, available: int, owner: str = "d1") -> dict:
        return {
            "metadata": {
                "labels": {traffic.POD_TEMPLATE_HASH: hash_},
                "annotations": {traffic.REVISION_ANNOTATION: revision},
                "ownerReferences": [{"uid": owner}],
            },
            "status": {"availableReplicas": available},
        }

    assert (
        traffic.serving_hash(deployment, [replica_set("1", "old", 3), replica_set("2", "new", 2)])
        is None
    )
    assert (
        traffic.serving_hash(deployment, [replica_set("1", "old", 0), replica_set("2", "new", 3)])
        == "new"
    )
    assert traffic.serving_hash(deployment, [replica_set("2", "theirs", 3, owner="d2")]) is None


# -- against the API server ------------------------------------------------------------------


def _run(awaitable: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(awaitable, 120)

    return asyncio.run(bounded())


def _app_identity(kubectl: Kubectl, namespace: str) -> str:
    """The App's deployer ServiceAccount: may touch Services and HTTPRoutes in its namespace."""
    kubectl("create", "serviceaccount", "deployer", "-n", namespace)
    kubectl(
        "create",
        "role",
        "routing",
        "-n",
        namespace,
        "--verb=get,list,watch,patch,create",
        "--resource=services,httproutes.gateway.networking.k8s.io,deployments,replicasets",
    )
    kubectl(
        "create",
        "rolebinding",
        "deployer",
        "-n",
        namespace,
        "--role=routing",
        f"--serviceaccount={namespace}:deployer",
    )
    return f"{namespace}/deployer"


async def _apply(
    dev_cluster: DevCluster, identity: str, namespace: str, routing: traffic.Routing
) -> list[dict]:
    async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
        return await traffic.apply(client.impersonating(identity), namespace, _render(), routing)


async def _serving_hash(dev_cluster: DevCluster, identity: str, namespace: str) -> str | None:
    async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
        return await traffic.observe_serving_hash(client.impersonating(identity), namespace, "web")


async def _stable_hash(dev_cluster: DevCluster, identity: str, namespace: str) -> str | None:
    async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
        return await traffic.observe_stable_hash(
            client.impersonating(identity), namespace, "web", "web-stable"
        )


def _pod_ips(kubectl: Kubectl, namespace: str, selector: str) -> set[str]:
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)
    return {p["status"]["podIP"] for p in pods["items"] if p["status"].get("podIP")}


def _endpoint_ips(kubectl: Kubectl, namespace: str, service: str) -> set[str]:
    slices = json.loads(
        kubectl(
            "get",
            "endpointslices",
            "-n",
            namespace,
            "-l",
            f"kubernetes.io/service-name={service}",
            "-o",
            "json",
        ).stdout
    )
    return {
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses") or []
    }


def _wait_endpoints(kubectl: Kubectl, namespace: str, service: str, expected: set[str]) -> None:
    seen: set[str] = set()
    for _ in range(240):
        seen = _endpoint_ips(kubectl, namespace, service)
        if seen == expected:
            return
        time.sleep(0.25)
    raise AssertionError(f"Service {service} serves {seen}, expected {expected}")


def _start(
    kubectl: Kubectl, namespace: str, name: str, image: str, replicas: int, extra: dict[str, str]
) -> None:
    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=json.dumps(_deployment(name, image, replicas, extra)),
    )


def test_weights_and_selectors_are_applied_as_the_app_and_steer_endpoints(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, gateway_api: None
) -> None:
    identity = _app_identity(kubectl, namespace)
    _start(kubectl, namespace, "web", "web:v1", 2, {})
    kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=120s")
    stable_hash = _run(_serving_hash(dev_cluster, identity, namespace))
    assert stable_hash is not None
    canary_labels = {TRACK_LABEL: "canary", "tether.dev/rollout": "web"}
    _start(kubectl, namespace, "web-canary", "web:v2", 1, canary_labels)
    kubectl("rollout", "status", "-n", namespace, "deployment/web-canary", "--timeout=120s")

    stored = _run(
        _apply(dev_cluster, identity, namespace, traffic.Routing(ROUTING, 20, stable_hash))
    )
    assert {o["kind"] for o in stored} == {"HTTPRoute", "Service"}
    route = kubectl.get("httproute", "web", namespace)
    assert route is not None
    assert traffic.route_weights(route, ROUTING) == (80, 20)
    shown = kubectl(
        "get", "httproute", "web", "-n", namespace, "-o", "json", "--show-managed-fields"
    )
    fields = json.loads(shown.stdout)["metadata"]["managedFields"]
    managers = {(f["manager"], f["operation"]) for f in fields}
    assert ("tether", "Apply") in managers
    audit = kubectl(
        "auth",
        "can-i",
        "patch",
        "httproutes.gateway.networking.k8s.io",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:deployer",
    )
    assert audit.stdout.strip() == "yes"

    stable_ips = _pod_ips(kubectl, namespace, f"app=web,pod-template-hash={stable_hash}")
    canary_ips = _pod_ips(kubectl, namespace, f"{TRACK_LABEL}=canary")
    assert len(stable_ips) == 2 and len(canary_ips) == 1
    _wait_endpoints(kubectl, namespace, "web-stable", stable_ips)
    _wait_endpoints(kubectl, namespace, "web-canary", canary_ips)

    # The next step: only the weights move; applying the same step twice changes nothing.
    _run(_apply(dev_cluster, identity, namespace, traffic.Routing(ROUTING, 60, stable_hash)))
    first = kubectl.get("httproute", "web", namespace)
    _run(_apply(dev_cluster, identity, namespace, traffic.Routing(ROUTING, 60, stable_hash)))
    second = kubectl.get("httproute", "web", namespace)
    assert first is not None and second is not None
    assert traffic.route_weights(second, ROUTING) == (40, 60)
    assert first["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]


def test_a_rolling_stable_keeps_its_service_on_the_ready_pods(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, gateway_api: None
) -> None:
    identity = _app_identity(kubectl, namespace)
    _start(kubectl, namespace, "web", "web:v1", 2, {})
    kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=120s")
    stable_hash = _run(_serving_hash(dev_cluster, identity, namespace))
    assert stable_hash is not None
    _run(_apply(dev_cluster, identity, namespace, traffic.Routing(ROUTING, 0, stable_hash)))
    old_ips = _pod_ips(kubectl, namespace, f"pod-template-hash={stable_hash}")
    _wait_endpoints(kubectl, namespace, "web-stable", old_ips)

    # Someone rolls the Git name to a version whose pods never become Ready.
    _start(kubectl, namespace, "web", unready_image("web", "v2"), 2, {})
    for _ in range(240):
        deployment = kubectl.get("deployment", "web", namespace)
        assert deployment is not None
        if deployment["status"].get("updatedReplicas", 0) >= 1:
            break
        time.sleep(0.25)
    assert _run(_serving_hash(dev_cluster, identity, namespace)) is None  # not available yet
    assert _run(_stable_hash(dev_cluster, identity, namespace)) == stable_hash  # kept
    _wait_endpoints(
        kubectl, namespace, "web-stable", old_ips & _pod_ips(kubectl, namespace, "app=web")
    )
    service = kubectl.get("service", "web-stable", namespace)
    assert service is not None
    assert service["spec"]["selector"][traffic.POD_TEMPLATE_HASH] == stable_hash


def test_an_identity_without_rights_on_routes_is_refused_by_the_api_server(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, gateway_api: None
) -> None:
    kubectl("create", "serviceaccount", "narrow", "-n", namespace)
    kubectl("create", "role", "svc", "-n", namespace, "--verb=*", "--resource=services")
    kubectl(
        "create",
        "rolebinding",
        "narrow",
        "-n",
        namespace,
        "--role=svc",
        f"--serviceaccount={namespace}:narrow",
    )
    with pytest.raises(ApiError) as refused:
        _run(
            _apply(
                dev_cluster, f"{namespace}/narrow", namespace, traffic.Routing(ROUTING, 10, None)
            )
        )
    assert refused.value.status == 403
    assert "HTTPRoute" in str(refused.value) or "httproutes" in str(refused.value)
    assert kubectl.get("httproute", "web", namespace) is None
