"""Blue-green on the delivery machine: a preview beside stable at full size, the active Service
switched between them by ``pod-template-hash``, analysis before and after the switch, and the
preview kept a while after promotion.

Blue-green has no steps of its own in Git; ``program`` writes its flow as the machine's steps,
so the one state machine (``machine.advance``) runs it, resumes it after a crash and takes its
decisions (pass, pause, abort, freeze) exactly as for a canary:

=====  ==========================  =================================================
step   machine step                blue-green meaning
=====  ==========================  =================================================
0      ``setWeight: 100``          the preview ``web-preview`` runs at full size; the
                                   machine waits until all its pods are Ready
1      prePromotionAnalysis        (when given) judged on the preview Service
2      ``pause: {}``               (when autoPromotionEnabled is false) waits for
                                   ``tether rollout promote``
S      (the switch)                from this step on, the active Service selects the
                                   preview's ReplicaSet (its hash): instant, no pod moves
S      postPromotionAnalysis       (when given) judged while stable still runs, so an
                                   abort switches the active Service straight back
end    Promoting → Promoted        the Git name ``web`` gets the head template; the
                                   active Service moves to its new ReplicaSet once
                                   Ready; the preview stays ``scaleDownDelay`` more
=====  ==========================  =================================================

The status ``weight`` of a blue-green is the preview's size (100: full, 0: none), not a share
of traffic: the active Service sends all of it to one side, the side ``active_on_preview`` says.
Everything here is pure but ``observe`` and ``apply``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from tether.cluster.client import KubeClient
from tether.core import Manifest
from tether.delivery import traffic
from tether.delivery.model import (
    TEMPLATE_DIGEST_ANNOTATION,
    TRACK_LABEL,
    BlueGreen,
    Canary,
    DeliveryError,
    DeliverySpec,
    Pause,
    Phase,
    RolloutStatus,
    SetWeight,
    Step,
)
from tether.delivery.shaping import with_replicas


def program(blue_green: BlueGreen) -> tuple[Step, ...]:
    """The machine steps that run ``blue_green`` (see the module's table)."""
    steps: list[Step] = [SetWeight(100)]
    if blue_green.pre_promotion is not None:
        steps.append(blue_green.pre_promotion)
    if not blue_green.auto_promotion:
        steps.append(Pause(None))
    if blue_green.post_promotion is not None:
        steps.append(blue_green.post_promotion)
    return tuple(steps)


def switch_step(blue_green: BlueGreen) -> int:
    """The step from which the active Service selects the preview."""
    return 1 + (blue_green.pre_promotion is not None) + (not blue_green.auto_promotion)


def machine_spec(spec: DeliverySpec) -> DeliverySpec:
    """``spec`` as the machine runs it: a blue-green's program as its steps (a canary's spec is
    returned as it is). The candidate keeps the blue-green name and track (``-preview``)."""
    if spec.blue_green is None:
        return spec
    return replace(spec, canary=Canary(program(spec.blue_green)))


def _blue_green(spec: DeliverySpec) -> BlueGreen:
    if spec.blue_green is None:
        raise DeliveryError(f"{spec.target.key}: not a blue-green delivery")
    return spec.blue_green


def active_on_preview(spec: DeliverySpec, status: RolloutStatus) -> bool:
    """Whether the active Service sends traffic to the preview now: from the switch step on,
    through promotion, until the Git name serves the new template (then Promoted: its own)."""
    if status.phase is Phase.PROMOTING:
        return True
    return status.phase.active and status.step >= switch_step(_blue_green(spec))


def preview_left(spec: DeliverySpec, status: RolloutStatus, now: datetime) -> float:
    """Seconds the preview has still to run after a promotion (the scale-down delay: routers
    and proxies catch up with the active Service's switch before its pods go); 0 when it can
    be removed, or when no promotion just happened."""
    if status.phase is not Phase.PROMOTED or not status.step_started_at:
        return 0.0
    promoted = datetime.fromisoformat(status.step_started_at)
    due = promoted + timedelta(seconds=_blue_green(spec).scale_down_delay)
    return max(0.0, (due - now).total_seconds())


def lingers(
    spec: DeliverySpec, status: RolloutStatus, preview: Mapping[str, Any] | None, now: datetime
) -> float:
    """Seconds the live ``preview`` Deployment is kept (``preview_left``), when it is the one
    just promoted: it runs the template now stable. A preview left by a cancelled or aborted
    rollout runs another one and goes at once (0)."""
    if preview is None or status.stable is None:
        return 0.0
    annotations = (preview.get("metadata") or {}).get("annotations") or {}
    if annotations.get(TEMPLATE_DIGEST_ANNOTATION) != status.stable.digest:
        return 0.0
    return preview_left(spec, status, now)


def replicas(status: RolloutStatus, total: int, lingering: bool = False) -> tuple[int, int]:
    """``(stable, preview)`` replicas: both at full size while the preview runs (a blue-green
    never shares pods) and while it lingers after a promotion; stable alone otherwise."""
    running = status.phase.active and status.weight > 0
    return total, total if running or lingering else 0


def deployment_status(status: RolloutStatus, lingering: bool) -> RolloutStatus:
    """The status a blue-green's Deployments are shaped for: while the promoted preview
    lingers, as if still promoting (the Git name on the head template, the preview still up)."""
    if lingering:
        return replace(status, phase=Phase.PROMOTING, weight=100)
    return status


def full_size(
    manifests: list[Manifest],
    spec: DeliverySpec,
    status: RolloutStatus,
    total: int,
    lingering: bool = False,
) -> list[Manifest]:
    """``manifests`` with the Git name's and the preview's Deployments sized by ``replicas``
    (a canary's split would halve stable; a blue-green keeps both whole)."""
    stable, preview = replicas(status, total, lingering)
    return with_replicas(manifests, spec, {spec.target.name: stable, spec.candidate_name: preview})


@dataclass(frozen=True)
class Hashes:
    """The ``pod-template-hash`` of what each side serves (None while unknown)."""

    stable: str | None
    preview: str | None


def selections(
    spec: DeliverySpec, status: RolloutStatus, hashes: Hashes
) -> tuple[traffic.ServiceSelection, traffic.ServiceSelection]:
    """What the active and the preview Services select besides Git's selector."""
    blue_green = _blue_green(spec)
    on_preview = active_on_preview(spec, status) and hashes.preview is not None
    active_hash = hashes.preview if on_preview else hashes.stable
    active = {traffic.POD_TEMPLATE_HASH: active_hash} if active_hash else {}
    return (
        traffic.ServiceSelection(blue_green.active_service, active),
        traffic.ServiceSelection(blue_green.preview_service, {TRACK_LABEL: spec.track}),
    )


def shape_services(
    manifests: list[Manifest], spec: DeliverySpec, status: RolloutStatus, hashes: Hashes
) -> list[Manifest]:
    """``manifests`` with the active and preview Services narrowed for ``status``."""
    return traffic.narrow_services(
        manifests, selections(spec, status, hashes), f"{spec.target.key} blueGreen"
    )


async def observe(client: KubeClient, namespace: str, spec: DeliverySpec) -> Hashes:
    """The hashes in the cluster: the Git name's serving ReplicaSet (or, while it rolls, what
    the active Service selects already) and the preview's, once all its pods are Ready."""
    blue_green = _blue_green(spec)
    stable = await traffic.observe_stable_hash(
        client, namespace, spec.target.name, blue_green.active_service
    )
    preview = await traffic.observe_serving_hash(client, namespace, spec.candidate_name)
    return Hashes(stable, preview)


async def apply(
    client: KubeClient,
    namespace: str,
    manifests: list[Manifest],
    spec: DeliverySpec,
    status: RolloutStatus,
    hashes: Hashes,
) -> list[dict[str, object]]:
    """Apply the two Services as shaped for ``status`` (server-side, field manager ``tether``,
    as ``client``'s identity: the App's)."""
    blue_green = _blue_green(spec)
    return await traffic.apply_objects(
        client,
        namespace,
        shape_services(manifests, spec, status, hashes),
        (blue_green.active_service, blue_green.preview_service),
    )
