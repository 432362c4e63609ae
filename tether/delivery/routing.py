"""How traffic reaches each side of a rollout, per strategy: the one place the runner asks.

- canary without a router: nothing here (the replica split of ``shaping`` is the traffic split);
- canary with ``trafficRouting.gatewayAPI``: the HTTPRoute's weights and the stable/canary
  Services' selectors (``traffic``);
- blue-green: both Deployments at full size, the active/preview Services' selectors, and the
  preview kept through the scale-down delay (``bluegreen``).

The shaped objects are part of the render the pass applies (server-side, field manager
``tether``, as the App's identity), so a step and the next sync never disagree. Reads of the
live ReplicaSets and Services go through the runner's client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from tether.cluster.client import KubeClient, Resource
from tether.core import Manifest
from tether.delivery import bluegreen, traffic
from tether.delivery.model import TRACK_LABEL, DeliverySpec, Phase, RolloutStatus
from tether.delivery.shaping import (
    find_target,
    leave_replicas,
    shape_target,
    total_replicas,
    with_replicas,
)


def machine_spec(spec: DeliverySpec) -> DeliverySpec:
    """``spec`` as the state machine runs it (a blue-green's flow written as steps)."""
    return bluegreen.machine_spec(spec)


def candidate_kept_for(
    spec: DeliverySpec,
    status: RolloutStatus,
    candidate: Mapping[str, Any] | None,
    now: datetime,
) -> float:
    """Seconds the live ``candidate`` must outlive its rollout (a promoted blue-green preview
    through its scale-down delay): the runner neither takes it down nor lets the render drop it
    before then (``shape_deployments(lingering=True)``), and looks again."""
    if spec.blue_green is None:
        return 0.0
    return bluegreen.lingers(spec, status, candidate, now)


def shape_deployments(
    manifests: list[Manifest],
    spec: DeliverySpec,
    status: RolloutStatus,
    stable: Mapping[str, Any] | None,
    lingering: bool = False,
    live_replicas: int | None = None,
) -> list[Manifest]:
    """``shaping.shape_target``, with a blue-green's sizes, and its promoted preview kept while
    it ``lingering`` (``candidate_kept_for``); a routed canary's stable at full size;
    ``live_replicas``: an autoscaled target's size, left to its HPA on the Git name."""
    head = find_target(manifests, spec)
    if head is None:
        return manifests
    total = total_replicas(head, live_replicas)
    status = _held_promotion(spec, status)
    if spec.blue_green is None:
        shaped = shape_target(manifests, spec, status, stable, live_replicas)
        routed = _routed_sizes(shaped, spec, status, total)
        return routed if live_replicas is None else leave_replicas(routed, spec)
    shaped = shape_target(manifests, spec, bluegreen.deployment_status(status, lingering), stable)
    sized = bluegreen.full_size(shaped, spec, status, total, lingering)
    return sized if live_replicas is None else leave_replicas(sized, spec)


def _held_promotion(spec: DeliverySpec, status: RolloutStatus) -> RolloutStatus:
    """A rollout frozen at its promotion (past the progress deadline with ``onFailure:
    freeze``, decision 0030) is shaped as it was promoting: nothing moves, the Git name keeps
    the candidate's template it was rolling out and the candidate stays at full size. (The
    live Git name runs the candidate's template then: taken as "stable", it would be cut to
    the stable share of replicas.)"""
    if status.phase is Phase.FROZEN and status.step >= len(machine_spec(spec).steps):
        return replace(status, phase=Phase.PROMOTING)
    return status


def _routed_sizes(
    manifests: list[Manifest], spec: DeliverySpec, status: RolloutStatus, total: int
) -> list[Manifest]:
    """A canary behind a router keeps its stable Deployment at full size while the candidate
    runs (decision 0028): the route, not the replica count, splits the traffic, so an abort is
    one route write with stable able to take it all at once, and stable is never cut to the
    candidate's remainder. The candidate keeps its share of replicas for its weight
    (``replica_split``, as without a router), the size Argo Rollouts also gives it."""
    routed = spec.canary is not None and spec.canary.routing is not None
    if not routed or not status.phase.active:
        return manifests
    return with_replicas(manifests, spec, {spec.target.name: total})


async def restore_stable(
    client: KubeClient, namespace: str, spec: DeliverySpec, total: int | None
) -> bool:
    """Put every request back on stable at once, ahead of the pass that records the abort
    (decision 0032): for a canary split by replicas, stable scaled to ``total`` (None: an HPA
    sizes it) and the candidate deleted, both at once. False, nothing done, for the
    strategies whose way back is a route or a Service write: their pass does it. The pass
    that follows applies the same sizes (server-side, forced), so it takes the fields back."""
    if spec.blue_green is not None or spec.canary is None or spec.canary.routing is not None:
        return False
    deployments = await client.resource("apps/v1", spec.target.kind)
    scaled = (
        client.merge_patch(deployments, namespace, spec.target.name, {"spec": {"replicas": total}})
        if total is not None
        else asyncio.sleep(0)
    )
    await asyncio.gather(scaled, _take_down_candidate(client, deployments, namespace, spec))
    return True


async def _take_down_candidate(
    client: KubeClient, deployments: Resource, namespace: str, spec: DeliverySpec
) -> None:
    """Delete the candidate Deployment if it is the one Tether derived (its track label)."""
    live = await client.get(deployments, namespace, spec.candidate_name)
    labels = ((live or {}).get("metadata") or {}).get("labels") or {}
    if live is not None and labels.get(TRACK_LABEL) == spec.track:
        await client.delete(deployments, namespace, spec.candidate_name)


async def shape_traffic(
    client: KubeClient,
    namespace: str,
    spec: DeliverySpec,
    status: RolloutStatus,
    manifests: list[Manifest],
    lingering: bool = False,
) -> list[Manifest]:
    """``manifests`` with the route and Services of ``spec`` set for ``status``. With no
    rollout under way (and no promoted preview lingering) they are left as Git wrote them: only
    the Git name's pods exist then, and the pass is "as rendered", the render a rollback keeps
    as the last good one."""
    if not (status.phase.active or lingering):
        return manifests
    if spec.blue_green is not None:
        hashes = await bluegreen.observe(client, namespace, spec)
        return bluegreen.shape_services(manifests, spec, status, hashes)
    routing = spec.canary.routing if spec.canary is not None else None
    if routing is None:
        return manifests
    stable = await traffic.observe_stable_hash(
        client, namespace, spec.target.name, routing.stable_service
    )
    return traffic.shape_routing(manifests, traffic.Routing(routing, status.weight, stable))
