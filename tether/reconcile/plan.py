"""Planning: every desired object resolved against discovery, compared with the live object
through a server-side dry-run, and given an action, before anything is written.

Objects whose kind is defined by a CRD in the same set, or whose namespace is created by the same
set, cannot be dry-run before those exist; they are *deferred* and dry-run as a second stage
once CRDs and Namespaces are applied.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from tether.cluster.client import ApiError, KubeClient, Resource
from tether.core import Action, Manifest, ObjectRef
from tether.core.compare import DIGEST_ANNOTATION, digest, in_sync, provably_unchanged
from tether.core.hooks import hook_phase, vanishes_when_finished
from tether.core.ignore import IgnoreRule, without_ignored
from tether.core.inventory import APP_LABEL, PART_OF_LABEL, Inventory
from tether.errors import ClusterError, OwnershipConflict
from tether.policy.access import PlacedObject, Tenancy, object_violations

_LIST_THRESHOLD = 8
_INVALID = 422
_FORBIDDEN = 403


@dataclass
class PlannedObject:
    """One desired object with what the server said about it."""

    manifest: Manifest
    resource: Resource | None = None
    live: dict[str, Any] | None = None
    dry_run: dict[str, Any] | None = None
    action: Action = Action.SKIPPED
    deferred: bool = False
    checked: bool = False  # dry-run done, or proven unchanged without one
    recreate: bool = False  # a chart hook that can only change by delete and create

    @property
    def ref(self) -> ObjectRef:
        return self.manifest.ref

    @property
    def body(self) -> dict[str, Any]:
        return self.manifest.body

    @property
    def first_stage(self) -> bool:
        return self.manifest.is_crd or self.manifest.is_namespace


@dataclass
class Plan:
    objects: list[PlannedObject] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def stage(self, first: bool) -> list[PlannedObject]:
        return [o for o in self.objects if o.first_stage == first]


def _crd_kinds(manifests: list[Manifest]) -> set[tuple[str, str]]:
    """(group, kind) pairs defined by CRDs in the set."""
    kinds = set()
    for manifest in manifests:
        if manifest.is_crd:
            spec = manifest.body.get("spec") or {}
            kinds.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))))
    return kinds


def prepare(manifests: list[Manifest], inventory: Inventory) -> list[Manifest]:
    """Copies of the manifests carrying the inventory labels (namespaces are set later).

    Planning changes only ``metadata`` (labels, namespace, annotations) and replaces rather than
    edits anything below it, so the body and its metadata are copied one level deep; the rest is
    shared with the rendered manifest (a deep copy of 1000 objects cost 0.15 s).
    """
    member_labels = inventory.member_labels()
    prepared = []
    for manifest in manifests:
        metadata = dict(manifest.body.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **member_labels}
        prepared.append(replace(manifest, body={**manifest.body, "metadata": metadata}))
    return prepared


def seal(obj: PlannedObject) -> None:
    """Stamp the digest of the final body (namespace set) for the no-op fast path; of its
    shape only when its values must stay hidden (a Secret, decrypted values)."""
    metadata = obj.body["metadata"]
    annotations = {
        k: v for k, v in (metadata.get("annotations") or {}).items() if k != DIGEST_ANNOTATION
    }
    metadata.pop("annotations", None)
    stamp = digest(obj.body, blind=obj.manifest.sensitive)
    metadata["annotations"] = {**annotations, DIGEST_ANNOTATION: stamp}


async def resolve(client: KubeClient, plan: Plan, namespace: str, new_namespaces: set[str]) -> None:
    """Find each object's API resource and default its namespace; defer what cannot exist yet."""
    crd_kinds = _crd_kinds([o.manifest for o in plan.objects])
    existing = {o.ref.name for o in plan.objects if o.manifest.is_namespace}
    for obj in plan.objects:
        try:
            obj.resource = await client.resource(obj.manifest.api_version, obj.manifest.kind)
        except ClusterError as error:
            if (obj.ref.group, obj.ref.kind) in crd_kinds:
                obj.deferred = True
                continue
            plan.errors.append(f"{obj.ref} ({obj.manifest.source}): {error}")
            continue
        metadata = obj.body["metadata"]
        if obj.resource.namespaced:
            metadata.setdefault("namespace", namespace)
            if not metadata["namespace"]:
                metadata["namespace"] = namespace
            if metadata["namespace"] in new_namespaces and metadata["namespace"] in existing:
                obj.deferred = True
        elif metadata.get("namespace"):
            del metadata["namespace"]


def check_duplicates(plan: Plan) -> None:
    """Two manifests that are one object once namespaces are defaulted (``a`` and ``default/a``)."""
    seen: dict[ObjectRef, PlannedObject] = {}
    for obj in plan.objects:
        if obj.resource is None:
            continue
        first = seen.setdefault(obj.ref, obj)
        if first is not obj:
            plan.errors.append(
                f"{obj.ref} is defined twice: {first.manifest.source} and {obj.manifest.source} "
                "(one names the namespace, one gets it by default); keep one"
            )


def check_tenancy(plan: Plan, tenancy: Tenancy) -> list[str]:
    """Objects the app's team may not create (deferred custom resources count as namespaced)."""
    placed = [
        PlacedObject(
            o.ref, o.resource.namespaced if o.resource else bool(o.ref.namespace), o.manifest.source
        )
        for o in plan.objects
    ]
    return object_violations(tenancy, placed)


async def resolve_deferred(client: KubeClient, plan: Plan, namespace: str) -> None:
    """Resolve objects deferred in the first pass (after CRDs and Namespaces exist)."""
    client.forget_discovery()
    for obj in plan.objects:
        if obj.deferred and obj.resource is None:
            try:
                obj.resource = await client.resource(
                    obj.manifest.api_version, obj.manifest.kind, refresh=True
                )
            except ClusterError as error:
                plan.errors.append(f"{obj.ref} ({obj.manifest.source}): {error}")
                continue
            if obj.resource.namespaced and not obj.body["metadata"].get("namespace"):
                obj.body["metadata"]["namespace"] = namespace


async def fetch_live(client: KubeClient, objects: list[PlannedObject]) -> None:
    """The live version of each object: one LIST per kind and namespace when many, else GETs."""
    groups: dict[tuple[Resource, str], list[PlannedObject]] = defaultdict(list)
    for obj in objects:
        if obj.resource is not None:
            groups[(obj.resource, obj.ref.namespace if obj.resource.namespaced else "")].append(obj)

    async def load(resource: Resource, namespace: str, members: list[PlannedObject]) -> None:
        if len(members) >= _LIST_THRESHOLD:
            try:
                items = await client.list(resource, namespace)
            except ApiError as error:
                if error.status != _FORBIDDEN:
                    raise
            else:
                by_name = {item["metadata"]["name"]: item for item in items}
                for obj in members:
                    obj.live = by_name.get(obj.ref.name)
                return
        for obj in members:
            obj.live = await _readable(client, resource, namespace, obj.ref.name)

    await asyncio.gather(*(load(r, ns, members) for (r, ns), members in groups.items()))


async def _readable(
    client: KubeClient, resource: Resource, namespace: str, name: str
) -> dict[str, Any] | None:
    """The live object, or None when the app's identity may not read it: its dry-run is then
    refused too, and the plan names every object refused so, not only the first."""
    try:
        return await client.get(resource, namespace, name)
    except ApiError as error:
        if error.status != _FORBIDDEN:
            raise
        return None


def check_ownership(objects: list[PlannedObject], inventory: Inventory) -> list[str]:
    """Objects that another app manages: Tether never touches them."""
    conflicts = []
    for obj in objects:
        labels = ((obj.live or {}).get("metadata") or {}).get("labels") or {}
        part_of = labels.get(PART_OF_LABEL)
        if part_of and part_of != inventory.id:
            owner = labels.get(APP_LABEL, part_of)
            conflicts.append(
                f"{obj.ref} ({obj.manifest.source}) belongs to app {owner!r}: remove it from one of "
                f"the two apps, or delete it from {owner!r} first"
            )
    return conflicts


async def dry_run(
    client: KubeClient,
    plan: Plan,
    objects: list[PlannedObject],
    ignore: tuple[IgnoreRule, ...] = (),
) -> None:
    """Decide created / configured / unchanged for each object.

    Objects provably unchanged (see ``provably_unchanged``) are settled locally; every other
    object is dry-run with server-side apply and compared with the live object.
    """

    async def one(obj: PlannedObject) -> None:
        assert obj.resource is not None
        obj.manifest = replace(obj.manifest, body=without_ignored(obj.body, obj.live, ignore))
        seal(obj)
        if obj.live is not None and provably_unchanged(obj.body, obj.live):
            obj.action, obj.checked = Action.UNCHANGED, True
            return
        try:
            obj.dry_run = await client.apply(obj.resource, obj.body, dry_run=True)
        except ApiError as error:
            if _immutable_hook(obj, error):
                obj.action, obj.checked, obj.recreate = Action.CONFIGURED, True, True
                return
            plan.errors.append(f"{obj.ref} ({obj.manifest.source}): {refusal(obj, error)}")
            obj.action = Action.FAILED
            return
        obj.checked = True
        if obj.live is not None and _version(obj.dry_run) != _version(obj.live):
            obj.live = await client.get(obj.resource, obj.ref.namespace, obj.ref.name)
        if obj.live is None:
            obj.action = Action.CREATED
        elif in_sync(obj.dry_run, obj.live):
            obj.action = Action.UNCHANGED
        else:
            obj.action = Action.CONFIGURED

    await asyncio.gather(*(one(o) for o in objects if o.resource is not None))


def rest_vanished_jobs(plan: Plan, synced_before: bool) -> list[PlannedObject]:
    """Jobs that delete themselves once finished (``vanishes_when_finished``), gone since the
    sync that ran them, left alone when nothing else of the app changes: their absence is no
    change. With any other change they are created again (and run, as Helm runs its hooks on
    every upgrade). The first sync always runs them. Returns the Jobs left alone."""
    if not synced_before:
        return []
    vanished = [
        o
        for o in plan.objects
        if o.action is Action.CREATED and o.live is None and vanishes_when_finished(o.body)
    ]
    others = [o for o in plan.objects if all(o is not v for v in vanished)]
    if not vanished or any(o.action is not Action.UNCHANGED for o in others):
        return []
    for obj in vanished:
        obj.action = Action.UNCHANGED
    return vanished


def _immutable_hook(obj: PlannedObject, error: ApiError) -> bool:
    """A chart hook that exists and whose change the server refuses as immutable (a Job's pod
    template): re-created instead, as Helm's ``before-hook-creation`` does (decision 0016)."""
    return (
        obj.live is not None
        and hook_phase(obj.body) is not None
        and error.status == _INVALID
        and "immutable" in str(error)
    )


def refusal(obj: PlannedObject, error: BaseException) -> str:
    """What to say about the server refusing ``obj``: never its echo of a Secret's or a
    decrypted object's values, only the fields and reasons."""
    if isinstance(error, ApiError) and obj.manifest.sensitive:
        return error.withheld
    return str(error)


def _version(obj: dict[str, Any] | None) -> str:
    """The resourceVersion: a dry-run answers with the stored object's, so a mismatch means the
    live copy read earlier is stale (a controller wrote in between)."""
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))


def raise_on_conflicts(conflicts: list[str]) -> None:
    if conflicts:
        raise OwnershipConflict("refusing to sync: " + "; ".join(conflicts))
