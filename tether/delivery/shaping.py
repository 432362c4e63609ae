"""Shaping a render for a rollout: stable under the Git name, the candidate beside it.

Pure functions over manifests (no I/O). For a Deployment ``web`` under delivery:

- idle, Git's template is the one serving: ``web`` exactly as rendered;
- a rollout running: ``web`` with the STABLE pod template (what serves now, read from the live
  object by the runner) at the stable share of replicas, and ``web-canary`` built from the head
  render: name suffixed, ``tether.dev/rollout`` and ``tether.dev/track`` added to its labels,
  selector and pod labels (its ReplicaSets never adopt stable pods), at the candidate's share;
- promoting: ``web`` with the head template at full size, the candidate still up;
- aborted, or Git's head is a version that was aborted: ``web`` at its stable template, no
  candidate, and (as when idle) no ``tether.dev/template-digest`` annotation: the rollback that
  follows an abort applies the last good render, which is as rendered, and the two must agree
  (else the annotation's removal reads as drift).

AnalysisTemplates in the render are taken out (never applied) and used by name.

An autoscaled target (Git writes no ``replicas``, or an HPA in the render scales it): the total
is the live Deployment's ``spec.replicas`` (what the HPA set), and the Git name is shaped
without ``replicas`` so server-side apply leaves that field to the HPA.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tether.core import Manifest
from tether.core.compare import digest
from tether.delivery.machine import replica_split
from tether.delivery.model import (
    ROLLOUT_LABEL,
    TEMPLATE_DIGEST_ANNOTATION,
    TRACK_LABEL,
    DeliveryError,
    DeliverySpec,
    Phase,
    RolloutStatus,
)

ANALYSIS_TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
ANALYSIS_TEMPLATE_GROUPS = ("argoproj.io/", "tether.dev/")
# Fields the API server fills in on a pod template that Git never wrote.
_SERVER_TEMPLATE_FIELDS = ("creationTimestamp",)


def is_analysis_template(manifest: Manifest) -> bool:
    return manifest.kind in ANALYSIS_TEMPLATE_KINDS and manifest.api_version.startswith(
        ANALYSIS_TEMPLATE_GROUPS
    )


def split_templates(manifests: Sequence[Manifest]) -> tuple[list[Manifest], list[Manifest]]:
    """``(objects to apply, AnalysisTemplates)``: templates are read, never applied."""
    templates = [m for m in manifests if is_analysis_template(m)]
    return [m for m in manifests if not is_analysis_template(m)], templates


def unserved_templates(
    manifests: Sequence[Manifest], served: Collection[str]
) -> tuple[list[Manifest], list[Manifest]]:
    """``split_templates`` for a sync that knows no App's ``spec.delivery`` (``tether sync`` /
    ``tether diff``): an AnalysisTemplate is set aside unless the API server serves its kind
    (``apiVersion/Kind`` in ``served``, Argo Rollouts installed) or the render brings the
    CustomResourceDefinition of it; then it is an object like any other."""
    defined = {
        f"{(m.body.get('spec') or {}).get('group')}/{((m.body.get('spec') or {}).get('names') or {}).get('kind')}"
        for m in manifests
        if m.is_crd
    }
    served_kinds = set(served)

    def set_aside(manifest: Manifest) -> bool:
        group = manifest.api_version.partition("/")[0]
        return (
            is_analysis_template(manifest)
            and f"{manifest.api_version}/{manifest.kind}" not in served_kinds
            and f"{group}/{manifest.kind}" not in defined
        )

    return [m for m in manifests if not set_aside(m)], [m for m in manifests if set_aside(m)]


def find_target(manifests: Sequence[Manifest], spec: DeliverySpec) -> Manifest | None:
    """The rendered Deployment ``spec`` names, or None."""
    for manifest in manifests:
        body = manifest.body
        if (
            manifest.kind == spec.target.kind
            and manifest.api_version == "apps/v1"
            and (body.get("metadata") or {}).get("name") == spec.target.name
        ):
            return manifest
    return None


def template_digest(manifest: Manifest) -> str:
    """The digest of a Deployment's pod template as rendered: a rollout's identity."""
    template = (manifest.body.get("spec") or {}).get("template") or {}
    return digest(template, blind=manifest.sensitive)


def total_replicas(manifest: Manifest, live_replicas: int | None = None) -> int:
    """How many replicas the rollout splits: ``live_replicas`` for an autoscaled target
    (``autoscaled_replicas``), else Git's (1 when it does not say)."""
    if live_replicas is not None:
        return live_replicas
    return int((manifest.body.get("spec") or {}).get("replicas", 1) or 1)


def autoscaled_replicas(
    manifests: Sequence[Manifest], spec: DeliverySpec, live: Mapping[str, Any] | None
) -> int | None:
    """The live Deployment's ``spec.replicas`` when ``spec``'s target is autoscaled (Git
    writes no ``replicas``, or a HorizontalPodAutoscaler in the render targets it); None when
    Git's ``replicas`` rules. 1 while nothing is live yet."""
    head = find_target(manifests, spec)
    if head is None:
        return None
    if "replicas" in (head.body.get("spec") or {}) and not _hpa_targets(manifests, spec):
        return None
    return int(((live or {}).get("spec") or {}).get("replicas", 1) or 1)


def _hpa_targets(manifests: Sequence[Manifest], spec: DeliverySpec) -> bool:
    for manifest in manifests:
        if manifest.kind != "HorizontalPodAutoscaler":
            continue
        ref = (manifest.body.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") == spec.target.kind and ref.get("name") == spec.target.name:
            return True
    return False


def leave_replicas(manifests: list[Manifest], spec: DeliverySpec) -> list[Manifest]:
    """``manifests`` with no ``replicas`` on the Git name's Deployment (its HPA owns them)."""
    return [_unsized(m) if m is find_target(manifests, spec) else m for m in manifests]


def _unsized(manifest: Manifest) -> Manifest:
    body = copy.deepcopy(manifest.body)
    (body.get("spec") or {}).pop("replicas", None)
    return Manifest(body, manifest.source, manifest.decrypted)


def stable_template(live: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The pod template the live Deployment serves with, as it can be applied again."""
    if not live:
        return None
    template = copy.deepcopy((live.get("spec") or {}).get("template") or {})
    metadata = template.get("metadata") or {}
    for name in _SERVER_TEMPLATE_FIELDS:
        metadata.pop(name, None)
    return template or None


def shape_target(
    manifests: list[Manifest],
    spec: DeliverySpec,
    status: RolloutStatus,
    stable: Mapping[str, Any] | None,
    live_replicas: int | None = None,
) -> list[Manifest]:
    """``manifests`` with ``spec``'s Deployment shaped for ``status`` (``stable``: the pod
    template serving now, from the live object; needed while the head is not what serves;
    ``live_replicas``: an autoscaled target's live size, see ``autoscaled_replicas``)."""
    head = find_target(manifests, spec)
    if head is None:
        return manifests
    head_digest = template_digest(head)
    stable_digest = status.stable.digest if status.stable else head_digest
    total = total_replicas(head, live_replicas)
    phase = status.phase
    shaped: list[Manifest]
    if phase is Phase.PROMOTED and head_digest == stable_digest:
        return manifests  # as rendered: what a rollback keeps as the last good render
    if phase is Phase.PROMOTING:
        _, candidate_replicas = replica_split(total, status.weight)
        shaped = [
            _serving(head, None, total, head_digest),
            _candidate(head, spec, candidate_replicas, head_digest),
        ]
    elif phase.active:
        template = _required(stable, spec)
        stable_replicas, candidate_replicas = replica_split(total, status.weight)
        shaped = [
            _serving(head, template, stable_replicas, stable_digest),
            _candidate(head, spec, candidate_replicas, head_digest),
        ]
    else:  # aborted, or idle with Git's head at an aborted version
        # unannotated, as the last good render has it (idle: as rendered): the rollback that
        # follows an abort applies that render, and a differing annotation would read as drift
        shaped = [_serving(head, _required(stable, spec), total, None)]
    if live_replicas is not None:
        shaped = leave_replicas(shaped, spec)
    return [m for m in manifests if m is not head] + shaped


def with_replicas(
    manifests: list[Manifest], spec: DeliverySpec, sizes: Mapping[str, int]
) -> list[Manifest]:
    """``manifests`` with the Deployments of ``spec``'s kind named in ``sizes`` at that size."""
    return [_sized(manifest, spec, sizes) for manifest in manifests]


def _sized(manifest: Manifest, spec: DeliverySpec, sizes: Mapping[str, int]) -> Manifest:
    name = str((manifest.body.get("metadata") or {}).get("name") or "")
    if manifest.kind != spec.target.kind or manifest.api_version != "apps/v1" or name not in sizes:
        return manifest
    body = copy.deepcopy(manifest.body)
    body.setdefault("spec", {})["replicas"] = sizes[name]
    return Manifest(body, manifest.source, manifest.decrypted)


def _required(stable: Mapping[str, Any] | None, spec: DeliverySpec) -> dict[str, Any]:
    if stable is None:
        raise DeliveryError(
            f"{spec.target.key}: the stable version is not in the cluster (was the Deployment "
            "deleted by hand?); nothing was applied. Run `tether rollout retry` to roll the "
            "head out again, or restore the Deployment"
        )
    return dict(stable)


def _serving(
    head: Manifest,
    template: Mapping[str, Any] | None,
    replicas: int,
    template_digest_: str | None,
) -> Manifest:
    """The Git name: the head's object with ``template`` (None: the head's own), annotated
    with ``template_digest_`` while a candidate runs beside it (None: not annotated)."""
    body = copy.deepcopy(head.body)
    spec = body.setdefault("spec", {})
    if template is not None:
        spec["template"] = copy.deepcopy(dict(template))
    spec["replicas"] = replicas
    if template_digest_ is not None:
        _annotate(body, template_digest_)
    return Manifest(body, head.source, head.decrypted)


def _candidate(head: Manifest, spec: DeliverySpec, replicas: int, digest_: str) -> Manifest:
    """The candidate Deployment derived from the head render."""
    body = copy.deepcopy(head.body)
    metadata = body.setdefault("metadata", {})
    metadata["name"] = spec.candidate_name
    labels = {ROLLOUT_LABEL: spec.target.name, TRACK_LABEL: spec.track}
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    deployment = body.setdefault("spec", {})
    deployment["replicas"] = replicas
    selector = deployment.setdefault("selector", {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), **labels}
    template_metadata = deployment.setdefault("template", {}).setdefault("metadata", {})
    template_metadata["labels"] = {**(template_metadata.get("labels") or {}), **labels}
    _annotate(body, digest_)
    return Manifest(body, head.source, head.decrypted)


def _annotate(body: dict[str, Any], template_digest_: str) -> None:
    metadata = body.setdefault("metadata", {})
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        TEMPLATE_DIGEST_ANNOTATION: template_digest_,
    }
