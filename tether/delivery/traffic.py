"""Traffic for a rollout through a router: Gateway API ``HTTPRoute`` weights and the selectors of
the Services a rollout steers (canary's stable/canary Services, blue-green's active/preview).

Git holds the route and the Services; Tether owns three things in them while a rollout runs,
and nothing else (idle, they are applied as Git wrote them, see ``routing.shape_traffic``):

- the ``weight`` of the route's backendRefs naming the stable and the canary Service (a rule
  naming only the stable Service gains a canary backendRef on the same port, at its weight);
- the stable (or active) Service's selector: Git's selector plus ``pod-template-hash`` of the
  ReplicaSet that serves, so only those pods get its traffic even while the Git name's
  Deployment rolls to a new template;
- the canary (or preview) Service's selector: Git's selector plus ``tether.dev/track`` (and the
  candidate's ``pod-template-hash`` for blue-green's preview, when known).

The shaping is pure (``shape_routing`` and friends, also what a sync's ManifestShaper uses), so a
step applies exactly the objects the next sync would apply: no fight between the two. ``apply``
sends them by server-side apply, field manager ``tether``, as the App's identity (the client
given, impersonating the App's ServiceAccount), the whole object each time: a partial apply by
the same manager would remove the fields it leaves out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.cluster.client import KubeClient
from tether.core import Manifest
from tether.delivery.model import TRACK_LABEL, DeliveryError, GatewayRouting

POD_TEMPLATE_HASH = "pod-template-hash"
"""The label the Deployment controller puts on a ReplicaSet's pods: one value per template."""
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
HTTP_ROUTE_API_VERSIONS = ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1")


@dataclass(frozen=True)
class ServiceSelection:
    """What one Service must select besides Git's selector."""

    name: str
    extra: Mapping[str, str]


@dataclass(frozen=True)
class Routing:
    """The traffic of one rollout at one moment: the candidate's weight and whom each Service
    selects. ``stable_hash`` is the serving ReplicaSet's ``pod-template-hash`` (None before it
    is known: Git's selector alone)."""

    routing: GatewayRouting
    canary_weight: int
    stable_hash: str | None
    track: str = "canary"

    def selections(self) -> tuple[ServiceSelection, ServiceSelection]:
        stable = {POD_TEMPLATE_HASH: self.stable_hash} if self.stable_hash else {}
        canary = {TRACK_LABEL: self.track}
        return (
            ServiceSelection(self.routing.stable_service, stable),
            ServiceSelection(self.routing.canary_service, canary),
        )


# -- pure shaping ----------------------------------------------------------------------------


def _name(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("name") or "")


def _is(manifest: Manifest, kinds: Iterable[tuple[str, str]], name: str) -> bool:
    return (manifest.api_version, manifest.kind) in kinds and _name(manifest.body) == name


def _backend_is_service(ref: Mapping[str, Any], service: str) -> bool:
    return (
        ref.get("name") == service
        and ref.get("kind", "Service") == "Service"
        and ref.get("group", "") in ("", "core")
    )


def weigh_route(
    route: Mapping[str, Any], routing: GatewayRouting, canary_weight: int
) -> dict[str, Any]:
    """``route`` (an HTTPRoute body) with ``canary_weight`` percent on the canary Service.

    Each rule naming the stable Service sends ``100 - canary_weight`` to it and
    ``canary_weight`` to the canary Service (added beside the stable backendRef, same port,
    when Git does not name it). Other backendRefs are left as Git wrote them. A route with no
    rule naming the stable Service is refused: there is nothing to split.
    """
    if not 0 <= canary_weight <= 100:
        raise DeliveryError(f"a canary weight is 0 to 100 percent, not {canary_weight}")
    body = copy.deepcopy(dict(route))
    rules = (body.get("spec") or {}).get("rules") or []
    split = 0
    for rule in rules:
        refs: list[dict[str, Any]] = rule.get("backendRefs") or []
        stable = [ref for ref in refs if _backend_is_service(ref, routing.stable_service)]
        if not stable:
            continue
        split += 1
        canary = [ref for ref in refs if _backend_is_service(ref, routing.canary_service)]
        if not canary:
            added = {k: v for k, v in stable[0].items() if k in ("group", "kind", "port")}
            canary = [{"name": routing.canary_service, **added}]
            refs.insert(refs.index(stable[0]) + 1, canary[0])
            rule["backendRefs"] = refs
        for ref in stable:
            ref["weight"] = 100 - canary_weight
        for ref in canary:
            ref["weight"] = canary_weight
    if split == 0:
        raise DeliveryError(
            f"HTTPRoute {_name(route)}: no rule has a backendRef to the stable Service "
            f"{routing.stable_service!r} named in trafficRouting.gatewayAPI.stableService; add "
            "one to the route in Git (Tether sets its weight), or fix the Service's name"
        )
    return body


def route_weights(route: Mapping[str, Any], routing: GatewayRouting) -> tuple[int, int]:
    """``(stable, canary)`` weights of ``route``'s first rule that names the stable Service
    (how a live route is read back; (100, 0) when it names no canary)."""
    for rule in (route.get("spec") or {}).get("rules") or []:
        refs = rule.get("backendRefs") or []
        stable = [r for r in refs if _backend_is_service(r, routing.stable_service)]
        if stable:
            canary = [r for r in refs if _backend_is_service(r, routing.canary_service)]
            return (
                int(stable[0].get("weight", 1)),
                int(canary[0].get("weight", 1)) if canary else 0,
            )
    raise DeliveryError(f"HTTPRoute {_name(route)}: no rule names {routing.stable_service!r}")


def select(service: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, Any]:
    """``service`` (a Service body) whose selector is Git's plus ``extra``. A Service with no
    selector of its own (endpoints managed by hand) is refused: adding to it would start
    selecting pods Git never meant it to."""
    body = copy.deepcopy(dict(service))
    spec = body.setdefault("spec", {})
    selector = spec.get("selector") or {}
    if not selector:
        raise DeliveryError(
            f"Service {_name(service)}: it has no selector, so Tether cannot narrow it to one "
            "version; give it the Deployment's pod labels as selector in Git"
        )
    spec["selector"] = {**selector, **extra}
    return body


def narrow_services(
    manifests: Sequence[Manifest], selections: Iterable[ServiceSelection], where: str
) -> list[Manifest]:
    """``manifests`` with each selected Service's selector narrowed (``where``: the spec field
    that named them, for the error when one is not in the render)."""
    wanted = {s.name: s for s in selections}
    found = {
        name: next((m for m in manifests if _is(m, [("v1", "Service")], name)), None)
        for name in wanted
    }
    missing = [name for name, manifest in found.items() if manifest is None]
    if missing:
        raise DeliveryError(
            f"the Service(s) {', '.join(missing)} named in {where} are not in the App's "
            "render: add them to the App's path in Git"
        )
    shaped = {
        id(manifest): _like(manifest, select(manifest.body, wanted[name].extra))
        for name, manifest in found.items()
        if manifest is not None
    }
    return [shaped.get(id(m), m) for m in manifests]


def shape_routing(manifests: Sequence[Manifest], traffic: Routing) -> list[Manifest]:
    """``manifests`` with the route weighed and both Services narrowed for ``traffic``.

    The route and both Services must be in the render (the App owns them): a missing one is
    an error naming it, and nothing is applied.
    """
    routing = traffic.routing
    route_kinds = [(version, "HTTPRoute") for version in HTTP_ROUTE_API_VERSIONS]
    route = next((m for m in manifests if _is(m, route_kinds, routing.http_route)), None)
    if route is None:
        raise DeliveryError(
            f"trafficRouting.gatewayAPI.httpRoute {routing.http_route!r} is not in the App's "
            "render: add the HTTPRoute to the App's path in Git"
        )
    weighed = _like(route, weigh_route(route.body, routing, traffic.canary_weight))
    routed = [weighed if m is route else m for m in manifests]
    return narrow_services(routed, traffic.selections(), "trafficRouting.gatewayAPI")


def _like(manifest: Manifest, body: dict[str, Any]) -> Manifest:
    return Manifest(body, manifest.source, manifest.decrypted)


def serving_hash(
    deployment: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]]
) -> str | None:
    """The ``pod-template-hash`` of ``deployment``'s current ReplicaSet once all its desired
    pods are available (None until then: keep selecting the previous one). The current
    ReplicaSet is the one whose revision annotation is the Deployment's own."""
    revision = ((deployment.get("metadata") or {}).get("annotations") or {}).get(
        REVISION_ANNOTATION
    )
    uid = (deployment.get("metadata") or {}).get("uid")
    desired = int((deployment.get("spec") or {}).get("replicas", 1) or 0)
    for replica_set in replica_sets:
        metadata = replica_set.get("metadata") or {}
        owners = [ref.get("uid") for ref in metadata.get("ownerReferences") or []]
        if uid not in owners or revision is None:
            continue
        if (metadata.get("annotations") or {}).get(REVISION_ANNOTATION) != revision:
            continue
        available = int((replica_set.get("status") or {}).get("availableReplicas", 0) or 0)
        labels = metadata.get("labels") or {}
        if available >= max(desired, 1) and POD_TEMPLATE_HASH in labels:
            return str(labels[POD_TEMPLATE_HASH])
    return None


# -- in the cluster --------------------------------------------------------------------------


async def observe_serving_hash(client: KubeClient, namespace: str, deployment: str) -> str | None:
    """``serving_hash`` of the live Deployment ``namespace/deployment`` (None while it is
    absent or rolling)."""
    deployments = await client.resource("apps/v1", "Deployment")
    live = await client.get(deployments, namespace, deployment)
    if live is None:
        return None
    replica_sets = await client.resource("apps/v1", "ReplicaSet")
    selector = ((live.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    owned = await client.list(replica_sets, namespace, label_selector)
    return serving_hash(live, owned)


def selected_hash(service: Mapping[str, Any] | None) -> str | None:
    """The ``pod-template-hash`` a live Service selects now (None: none, or no Service)."""
    selector = ((service or {}).get("spec") or {}).get("selector") or {}
    value = selector.get(POD_TEMPLATE_HASH)
    return str(value) if value else None


async def observe_stable_hash(
    client: KubeClient, namespace: str, deployment: str, service: str
) -> str | None:
    """The hash the stable (or active) Service should select: that of ``deployment``'s
    serving ReplicaSet, or while it rolls, the one the live ``service`` selects already (so a
    rolling Deployment never widens the Service to its unready pods)."""
    serving = await observe_serving_hash(client, namespace, deployment)
    if serving is not None:
        return serving
    services = await client.resource("v1", "Service")
    return selected_hash(await client.get(services, namespace, service))


async def apply_objects(
    client: KubeClient, namespace: str, manifests: Sequence[Manifest], names: Iterable[str]
) -> list[dict[str, Any]]:
    """Server-side apply (field manager ``tether``) the HTTPRoutes and Services of
    ``manifests`` named in ``names``, whole, through ``client`` (the App's identity); the
    objects as stored, in render order."""
    wanted = set(names)
    stored = []
    for manifest in manifests:
        if manifest.kind not in ("HTTPRoute", "Service") or _name(manifest.body) not in wanted:
            continue
        body = copy.deepcopy(manifest.body)
        body.setdefault("metadata", {})["namespace"] = namespace
        resource = await client.resource(manifest.api_version, manifest.kind)
        stored.append(await client.apply(resource, body, dry_run=False))
    return stored


async def apply(
    client: KubeClient, namespace: str, manifests: Sequence[Manifest], traffic: Routing
) -> list[dict[str, Any]]:
    """Apply the route and the Services of ``traffic`` as shaped from ``manifests`` (the App's
    render) by server-side apply, field manager ``tether``, through ``client`` (the App's
    identity); the objects as stored."""
    names = {traffic.routing.http_route, *(s.name for s in traffic.selections())}
    return await apply_objects(client, namespace, shape_routing(manifests, traffic), names)
