"""An App's life at its edges: the agent puts its finalizer on every App it manages, and when an
App is deleted it deletes what the App applied before letting it go (Flux's semantics: only an
App that prunes deletes its objects; ``tether.dev/deletion-policy: orphan`` keeps them; a
suspended App is let go without touching the cluster). See docs/agent.md#deleting-an-app."""

from __future__ import annotations

import logging

from tether.agent import crds
from tether.agent.annotations import FINALIZER
from tether.agent.events import EventRecorder
from tether.agent.settings import AgentSettings
from tether.agent.specs import AppSpec
from tether.agent.state import AppState
from tether.agent.status import AppStatusChange, StatusWriter
from tether.agent.tenancy import with_identity
from tether.audit import AuditStore
from tether.cluster.client import ApiError, KubeClient
from tether.cluster.kubeconfig import Connection
from tether.errors import TetherError
from tether.reconcile.options import SyncOptions
from tether.reconcile.run import run_delete

log = logging.getLogger("tether.agent.lifecycle")


class AppLifecycle:
    """Adds and removes the finalizer, and deletes an App's objects when it goes."""

    def __init__(
        self,
        connection: Connection,
        client: KubeClient,
        status: StatusWriter,
        events: EventRecorder,
        audit: AuditStore,
        actor: str,
        settings: AgentSettings,
    ) -> None:
        self.connection = connection
        self.client = client
        self.status = status
        self.events = events
        self.audit = audit
        self.actor = actor
        self.settings = settings

    async def _set_finalizer(self, spec: AppSpec, present: bool) -> bool:
        """Add or remove our finalizer with a compare-and-swap; False when the App moved on
        (a newer version will come through the informer) or is gone."""
        resource = await self.client.resource(crds.API_VERSION, "App")
        current = await self.client.get(resource, spec.namespace, spec.name)
        if current is None:
            return False
        finalizers = [f for f in current["metadata"].get("finalizers") or [] if f != FINALIZER]
        if present:
            finalizers.append(FINALIZER)
        current["metadata"]["finalizers"] = finalizers
        try:
            await self.client.replace(resource, current)
        except ApiError as error:
            if error.conflict or error.not_found:
                return False
            raise
        return True

    async def adopt(self, spec: AppSpec) -> None:
        """Make sure the App carries the finalizer before anything is applied for it."""
        if not spec.finalized:
            await self._set_finalizer(spec, present=True)

    async def finalize(self, state: AppState, options: SyncOptions) -> None:
        """The App is being deleted: delete its objects (when it says so), then let it go."""
        spec = state.spec
        state.desired.clear()  # what happens to its objects from now on is not drift
        state.baseline.clear()
        state.drifted.clear()
        state.drifted_live.clear()
        if not spec.finalized:
            return
        if spec.deletes_objects and not spec.suspend:
            error = await self._delete_objects(spec, options)
            if error:
                state.failures += 1
                await self.status.app(
                    state, AppStatusChange(ready=(False, "DeletionFailed", error))
                )
                await self.events.record(spec, "Warning", "DeletionFailed", error)
                return  # the finalizer stays; the worker retries with backoff
        log.info("app deleted", extra={"app": spec.key, "orphaned": not spec.deletes_objects})
        await self._set_finalizer(spec, present=False)

    async def _delete_objects(self, spec: AppSpec, options: SyncOptions) -> str:
        """Delete what the App applied, as the identity it was applied as; the error, or ""."""
        try:
            identified = await with_identity(self.client, spec, options, self.settings)
        except TetherError as error:
            return str(error)
        report = await run_delete(
            identified, self.connection, audit=self.audit, actor=self.actor, client=self.client
        )
        if not report.error:
            await self.events.record(
                spec, "Normal", "Deleted", f"deleted {report.changes.summary()}"
            )
        return report.error
