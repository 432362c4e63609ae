"""Writing the ``status`` of Apps, GitSources and HelmSources: conditions, revisions, the
resolved artifact, inventory, history."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from tether.agent import crds
from tether.agent.conditions import now, set_condition
from tether.agent.specs import HelmSourceSpec, OCISourceSpec, SourceSpec
from tether.agent.state import AppState, HelmSourceState, OCISourceState, SourceState
from tether.cluster.client import ApiError, KubeClient
from tether.source import mask_url

ROLLOUT_CONDITION = "Rollout"  # progressive delivery's condition on an App (tether.delivery)


@dataclass(frozen=True)
class AppStatusChange:
    """What one status write changes; ``None`` leaves a condition as it is."""

    reconciling: bool | None = None
    ready: tuple[bool, str, str] | None = None
    stalled: bool | None = None
    drifted: bool | None = None
    attempted: str = ""
    applied: str = ""
    health: str = ""
    source_error: str | None = None
    chart: dict[str, str] | None = None  # a repository chart applied: name, version, digest
    # status fields owned by delivery (``quarantine``, ``lastAppliedRender``, ...), set whole
    fields: dict[str, Any] | None = None
    delivery: dict[str, Any] | None = None  # status.delivery, whole (tether.delivery)
    rollout: tuple[bool | None, str, str] | None = None  # the Rollout condition
    removed: tuple[str, ...] = ()  # conditions that no longer apply (``Rollout``: no delivery)


def _app_conditions(
    conditions: list[dict[str, Any]], change: AppStatusChange, state: AppState
) -> list[dict[str, Any]]:
    generation = state.spec.generation
    conditions = [c for c in conditions if c.get("type") not in change.removed]
    if change.reconciling is not None:
        reason = "Progressing" if change.reconciling else "Idle"
        conditions = set_condition(
            conditions, "Reconciling", change.reconciling, reason, "", generation
        )
    if change.ready is not None:
        ok, reason, message = change.ready
        conditions = set_condition(conditions, "Ready", ok, reason, message, generation)
    if change.stalled is not None:
        reason = "RetriesExhausted" if change.stalled else ""
        conditions = set_condition(conditions, "Stalled", change.stalled, reason, "", generation)
    if change.drifted is not None:
        detail = "; ".join(f"{r}: {', '.join(f[:5])}" for r, f in state.drifted.items())
        reason = "DriftDetected" if change.drifted else "InSync"
        conditions = set_condition(
            conditions, "Drifted", change.drifted, reason, detail, generation
        )
    if change.source_error is not None:
        error = change.source_error
        reason = "FetchFailed" if error else "Succeeded"
        conditions = set_condition(conditions, "SourceReady", not error, reason, error, generation)
    if change.rollout is not None:
        state_, why, detail = change.rollout
        conditions = set_condition(conditions, ROLLOUT_CONDITION, state_, why, detail, generation)
    return conditions


class StatusWriter:
    """Merge-patches the status subresource; a refused write is ignored (the next pass retries)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._writing: dict[str, asyncio.Lock] = {}

    async def app(self, state: AppState, change: AppStatusChange) -> None:
        """Only this replica writes an App's status while it leads, so what it last wrote is
        what the App holds: the status is read once, and a write that changes nothing is not
        sent. Writes of one App are made one at a time (a pass and a rollback running beside
        it must not each build on a status the other is about to replace)."""
        async with self._writing.setdefault(state.spec.key, asyncio.Lock()):
            await self._write_app(state, change)

    async def _write_app(self, state: AppState, change: AppStatusChange) -> None:
        resource = await self.client.resource(crds.API_VERSION, "App")
        spec = state.spec
        if state.status is None:
            current = await self.client.get(resource, spec.namespace, spec.name)
            if current is None:
                return
            state.status = dict(current.get("status") or {})
        status = dict(state.status)
        status["conditions"] = _app_conditions(list(status.get("conditions") or []), change, state)
        status["observedGeneration"] = spec.generation
        status["history"] = state.history
        if change.attempted:
            status["lastAttemptedRevision"] = change.attempted
        if change.applied:
            status["lastAppliedRevision"] = change.applied
            kinds = sorted({r.group_kind for r in state.desired})
            status["inventory"] = {"count": len(state.desired), "groupKinds": kinds}
        if change.health:
            status["health"] = change.health
        if change.chart is not None:
            status["chart"] = change.chart
        status.update(change.fields or {})
        if change.delivery is not None:
            status["delivery"] = change.delivery
        if status == state.status:
            return
        try:
            await self.client.patch_status(resource, spec.namespace, spec.name, status)
        except ApiError:
            state.status = None  # read it again next time
            return
        state.status = status

    async def current(self, state: AppState) -> dict[str, Any]:
        """The App's status as this replica knows it (read once from the cluster)."""
        if state.status is None:
            resource = await self.client.resource(crds.API_VERSION, "App")
            found = await self.client.get(resource, state.spec.namespace, state.spec.name)
            state.status = dict((found or {}).get("status") or {})
        return state.status

    async def source(
        self, spec: SourceSpec, ok: bool, reason: str, message: str, state: SourceState
    ) -> None:
        resource = await self.client.resource(crds.API_VERSION, "GitSource")
        status: dict[str, Any] = {"conditions": set_condition([], "Ready", ok, reason, message, 0)}
        if state.revision:
            status["artifact"] = {
                **({"signature": state.signature} if state.signature else {}),
                "revision": str(state.revision),
                "commit": state.revision.commit,
                "url": mask_url(spec.url),
                "fetchedAt": now(),
            }
        with contextlib.suppress(ApiError):
            await self.client.patch_status(resource, spec.namespace, spec.name, status)

    async def helm_source(self, spec: HelmSourceSpec, ok: bool, state: HelmSourceState) -> None:
        """``Ready`` and ``status.artifact``: per chart its Apps ask for, the version and digest
        resolved (or the error); ``revision``/``version``/``digest`` at the top when there is
        one chart, as for a GitSource's single artifact."""
        resource = await self.client.resource(crds.API_VERSION, "HelmSource")
        charts = [
            {"chart": name, "range": wanted, "version": a.version, "digest": a.digest}
            for (name, wanted), a in sorted(state.charts.items())
            if (name, wanted) not in state.chart_errors
        ] + [
            {"chart": name, "range": wanted, "error": error[:1000]}
            for (name, wanted), error in sorted(state.chart_errors.items())
        ]
        artifact: dict[str, Any] = {"url": mask_url(spec.url), "fetchedAt": state.fetched_at}
        resolved = [c for c in charts if "digest" in c]
        if len(resolved) == 1:
            only = resolved[0]
            artifact.update(
                revision=f"{only['chart']} {only['version']}@{only['digest']}",
                version=only["version"],
                digest=only["digest"],
            )
        elif resolved:
            artifact["revision"] = f"{len(resolved)} charts"
        artifact["charts"] = charts
        message = (
            state.error
            or ", ".join(f"{c['chart']} {c['version']}" for c in resolved)
            or "no App names a chart of this HelmSource yet"
        )
        status = {
            "conditions": set_condition(
                [], "Ready", ok, "Succeeded" if ok else "FetchFailed", message, 0
            ),
            "artifact": artifact,
        }
        with contextlib.suppress(ApiError):
            await self.client.patch_status(resource, spec.namespace, spec.name, status)

    async def oci_source(
        self, spec: OCISourceSpec, ok: bool, message: str, state: OCISourceState
    ) -> None:
        """``Ready`` and ``status.artifact``: the tag, digest and revision last pulled."""
        resource = await self.client.resource(crds.API_VERSION, "OCISource")
        reason = "Succeeded" if ok else "FetchFailed"
        status: dict[str, Any] = {"conditions": set_condition([], "Ready", ok, reason, message, 0)}
        if state.artifact is not None:
            artifact = state.artifact
            status["artifact"] = {
                "revision": artifact.revision,
                "digest": artifact.digest,
                "version": artifact.tag,
                "url": artifact.url,
                "fetchedAt": state.fetched_at,
                **({"origin": artifact.origin} if artifact.origin else {}),
                **(
                    {"originRevision": artifact.origin_revision} if artifact.origin_revision else {}
                ),
            }
        with contextlib.suppress(ApiError):
            await self.client.patch_status(resource, spec.namespace, spec.name, status)
