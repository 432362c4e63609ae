"""``tether status APP``: every object the app manages with its health and sync state.

The inventory parent records the source, path and revision of the last sync; status re-plans
that exact commit (a dry-run, nothing written) to tell Synced from OutOfSync per object. An
agent's App on a HelmSource or an OCISource is rendered again from what ``resolve`` builds
(the chart or artifact at the recorded digest, with the App's values; see
``tether.agent.appliedsource``); a chart synced by the CLI records too little to render again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection
from tether.core import Action, HealthReport, ObjectRef
from tether.core.inventory import DEFAULT_INVENTORY_NAMESPACE, PART_OF_LABEL, split_group_kind
from tether.errors import ClusterError, TetherError
from tether.health import assess_all
from tether.reconcile.charts import Binaries
from tether.reconcile.decrypt import KeySources, Redactor, decrypt_manifests
from tether.reconcile.engine import SyncEngine
from tether.reconcile.options import SyncOptions
from tether.reconcile.plan import Plan
from tether.reconcile.run import OCISpec, SourceSpec, load_manifests, load_source

SYNCED, OUT_OF_SYNC, UNKNOWN, PRUNE_PENDING = "Synced", "OutOfSync", "Unknown", "PrunePending"


@dataclass(frozen=True)
class PinnedSource:
    """What an app last applied, to render again: the source pinned to the recorded revision
    (digest or commit) and the keys its encrypted values need."""

    spec: SourceSpec
    keys: KeySources = field(default_factory=KeySources)


# Builds the pinned source of app (its identity) from the recorded source, or None when the
# recorded source says all (a Git source, an artifact synced by the CLI).
PinnedSourceResolver = Callable[[KubeClient, str, dict[str, str]], Awaitable[PinnedSource | None]]


@dataclass
class AppStatus:
    health: HealthReport
    revision: str = ""
    source: dict[str, str] = field(default_factory=dict)
    sync: dict[ObjectRef, str] = field(default_factory=dict)
    sync_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "source": self.source,
            "health": self.health.status.value,
            "syncError": self.sync_error,
            "objects": [
                {
                    "kind": o.ref.kind,
                    "group": o.ref.group,
                    "namespace": o.ref.namespace,
                    "name": o.ref.name,
                    "health": o.status.value,
                    "message": o.message,
                    "sync": self.sync.get(o.ref, UNKNOWN),
                }
                for o in self.health.objects
            ],
        }


async def app_status(
    app: str,
    connection: Connection,
    inventory_namespace: str = DEFAULT_INVENTORY_NAMESPACE,
    kustomize: Path | None = None,
    *,
    resolve: PinnedSourceResolver | None = None,
    helm: Callable[[], Path] | None = None,
) -> AppStatus:
    """Health of every object of ``app``'s inventory and, per object, whether it is as the
    source of the last sync renders it (``helm`` gives the helm binary when a chart is
    rendered; called only then)."""
    async with KubeClient(connection) as client:
        engine = SyncEngine(client, SyncOptions(app=app, inventory_namespace=inventory_namespace))
        inventory = await engine.load_inventory()
        if inventory is None:
            raise ClusterError(
                f"app {app!r} has no inventory (ConfigMap {inventory_namespace}/{app}): "
                "it was never synced to this cluster"
            )
        members: list[tuple[ObjectRef, dict[str, Any] | None]] = []
        for group_kind in sorted(inventory.group_kinds):
            group, kind = split_group_kind(group_kind)
            try:
                resource = await client.resource_for_group_kind(group, kind)
            except ClusterError:
                continue
            for namespace in sorted(inventory.namespaces) if resource.namespaced else [""]:
                for item in await client.list(
                    resource, namespace, f"{PART_OF_LABEL}={inventory.id}"
                ):
                    members.append((ObjectRef.of(item), item))
        status = AppStatus(
            assess_all(members), inventory.source.get("revision", ""), inventory.source
        )
        live = {ref for ref, _ in members}
        try:
            pinned = await resolve(client, app, inventory.source) if resolve else None
        except TetherError as error:
            status.sync_error = f"cannot compare with the source of the last sync: {error}"
            return status
        if pinned is None:
            await _sync_states(engine, status, inventory.source, live, kustomize)
        else:
            await _pinned_sync_states(
                engine, status, inventory.source, live, pinned, kustomize, helm
            )
        return status


async def _pinned_sync_states(
    engine: SyncEngine,
    status: AppStatus,
    source: dict[str, str],
    live: set[ObjectRef],
    pinned: PinnedSource,
    kustomize: Path | None,
    helm: Callable[[], Path] | None,
) -> None:
    """Render ``pinned`` as the agent did (charts with their values, decrypted) and compare."""
    recorded = replace(
        engine.options, namespace=source.get("namespace", "default"), keys=pinned.keys
    )
    redactor = Redactor()
    try:
        binaries = Binaries(kustomize, helm() if helm and pinned.spec.chart else None)
        _, manifests, options = await load_source(
            pinned.spec, binaries, recorded, engine.client, redactor
        )
        manifests = await decrypt_manifests(engine.client, manifests, options.keys, redactor)
        plan, _ = await SyncEngine(engine.client, options).plan(manifests)
    except TetherError as error:
        status.sync_error = (
            f"cannot compare with {_pinned_name(source)}: {redactor.scrub(str(error))}"
        )
        return
    _compare(status, plan, live)


def _pinned_name(source: dict[str, str]) -> str:
    """The chart (name, version, digest) or the artifact (URL@digest) the last sync applied."""
    if source.get("chartDigest"):
        chart, version = source.get("chart", ""), source.get("chartVersion", "")
        return f"chart {chart} {version} ({source['chartDigest']})"
    return f"{source.get('url', '')}@{source.get('revision', '')}"


async def _sync_states(
    engine: SyncEngine,
    status: AppStatus,
    source: dict[str, str],
    live: set[ObjectRef],
    kustomize: Path | None,
) -> None:
    if source.get("chart"):
        status.sync_error = (
            f"app renders chart {source['chart']!r} ({source.get('chartRevision', '')}): "
            "status does not compare chart apps with their source yet; use tether diff --chart"
        )
        return
    if not source.get("url") or not source.get("revision"):
        status.sync_error = "the inventory records no source"
        return
    spec = SourceSpec(source["url"], source.get("path", "."), source["revision"])
    if source["url"].startswith("oci://"):  # the artifact at the recorded digest (cached)
        pinned = OCISpec(f"{source['url']}@{source['revision']}")
        spec = SourceSpec(pinned.reference, spec.path, oci=pinned)
    try:
        _, manifests, _ = load_manifests(spec, kustomize)
        recorded = replace(engine.options, namespace=source.get("namespace", "default"))
        plan, _ = await SyncEngine(engine.client, recorded).plan(manifests)
    except TetherError as error:
        status.sync_error = f"cannot compare with {spec.url}@{spec.ref}: {error}"
        return
    _compare(status, plan, live)


def _compare(status: AppStatus, plan: Plan, live: set[ObjectRef]) -> None:
    """Each planned object Synced or OutOfSync (missing ones added), each live one the plan
    no longer has PrunePending."""
    desired = set()
    for obj in plan.objects:
        desired.add(obj.ref)
        status.sync[obj.ref] = SYNCED if obj.action is Action.UNCHANGED else OUT_OF_SYNC
        if obj.ref not in live:
            status.health.objects.append(assess_all([(obj.ref, None)]).objects[0])
    for ref in live - desired:
        status.sync[ref] = PRUNE_PENDING
