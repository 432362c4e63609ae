"""Apps: one serial worker per App reconciles it on a timer, when its source moves, when its
spec changes, on request, or when drift is seen; a global limit bounds how many apps reconcile
at once. A pass: checks (suspend, manual, dependencies, source), sync, status, events, alerts,
then a health wait that gives way as soon as something new pokes the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from tether.agent import metrics
from tether.agent.alerts import AlertQueue
from tether.agent.annotations import REQUESTED_ANNOTATION
from tether.agent.appsources import AppSources, NotReady, Pinned
from tether.agent.conditions import now
from tether.agent.delivery import AgentDelivery
from tether.agent.drift import DriftWatcher, WatchKey
from tether.agent.events import EventRecorder
from tether.agent.intervalworkers import jittered
from tether.agent.lifecycle import AppLifecycle
from tether.agent.quarantine import Quarantines
from tether.agent.settings import AgentSettings
from tether.agent.sources import SourceWorkers, alert_for
from tether.agent.specs import AppSpec
from tether.agent.state import AppState, Fleet
from tether.agent.status import AppStatusChange, StatusWriter
from tether.agent.tenancy import IdentityMissing, refusal_hint, with_identity
from tether.audit import AuditStore
from tether.cluster.client import KubeClient, Resource
from tether.cluster.kubeconfig import Connection
from tether.core import HealthStatus, ObjectRef
from tether.core.compare import drift_baseline
from tether.core.ignore import without_ignored
from tether.errors import TetherError
from tether.notify import AlertEvent
from tether.reconcile.decrypt import KeySources
from tether.reconcile.engine import SyncEngine
from tether.reconcile.options import SyncOptions
from tether.reconcile.run import SourceSpec as SyncSource
from tether.reconcile.run import SyncReport, run_heal, run_sync

log = logging.getLogger("tether.agent")
_HISTORY = 5
# Watches report drift as it happens, so a timer tick with nothing new (same revision, spec and
# request, no drift) does no API work; every FULL_PASS_EVERY-th tick still re-plans everything
# as a safety net against a missed watch event. See docs/decisions/0005-quiet-timer-ticks.md.
FULL_PASS_EVERY = 10
# An App whose health wait ended not Healthy is looked at again without waiting for its
# interval (its objects may still get there, with no change to Git or the cluster to wake it):
# after HEALTH_RECHECK seconds, twice as long after each verdict still not Healthy, at most
# the App's interval. Such a tick is never quiet.
HEALTH_RECHECK = 30.0


def sync_options(spec: AppSpec, timeout: float = 0) -> SyncOptions:
    return SyncOptions(
        app=spec.inventory_name,
        namespace=spec.destination,
        prune=spec.prune,
        timeout=timeout,
        ignore=spec.ignore,
        keys=KeySources(secret=spec.decryption_secret, environment=False),
        health_checks=spec.health_checks,
        health_grace=spec.health_grace,
    )


class AppWorkers:
    """Starts, updates and stops the worker of each App seen by the informer, in this shard."""

    def __init__(
        self,
        *,
        connection: Connection,
        client: KubeClient,
        settings: AgentSettings,
        fleet: Fleet,
        sources: SourceWorkers,
        app_sources: AppSources,
        drift: DriftWatcher,
        status: StatusWriter,
        events: EventRecorder,
        alerts: AlertQueue,
        audit: AuditStore,
    ) -> None:
        self.connection = connection
        self.client = client
        self.settings = settings
        self.fleet = fleet
        self.sources = sources
        self.app_sources = app_sources
        self.drift = drift
        self.status = status
        self.events = events
        self.alerts = alerts
        self.audit = audit
        self.slots = asyncio.Semaphore(settings.max_concurrent)
        self.delivery = AgentDelivery(
            client,
            status,
            events,
            alerts,
            audit,
            hold_rollbacks=settings.test_hold_rollbacks,
            crash_after_fast_restore=settings.test_crash_after_fast_restore,
        )
        self.lifecycle = AppLifecycle(
            connection, client, status, events, audit, f"agent/{settings.identity}", settings
        )
        self.quarantines = Quarantines(
            connection=connection,
            client=client,
            settings=settings,
            fleet=fleet,
            sources=sources,
            status=status,
            events=events,
            audit=audit,
            options=sync_options,
            restored=self._restored,
        )
        self.delivery.rollback_host = self.quarantines

    async def on_event(self, event: str, obj: dict[str, Any]) -> None:
        spec = AppSpec.of(obj)
        if not self.settings.owns(spec.key):
            return
        current = self.fleet.apps.get(spec.key)
        if event == "DELETED":
            if current and current.task:
                current.task.cancel()
            self.fleet.apps.pop(spec.key, None)
            self.delivery.forget(spec.key)
            return
        requested = (obj["metadata"].get("annotations") or {}).get(REQUESTED_ANNOTATION, "")
        if current is None:
            state = AppState(spec, reason=requested)
            self.fleet.apps[spec.key] = state
            state.task = asyncio.create_task(self._worker(state))
            state.poke("new app")
        elif current.spec != spec or requested != current.reason:
            why = "spec changed" if current.spec != spec else f"requested {requested}"
            current.spec, current.reason = spec, requested
            current.poke(why)
        else:
            current.spec = spec  # news in metadata only (our finalizer): no new pass

    async def _worker(self, state: AppState) -> None:
        while True:
            failing = state.failures > 0
            wait = state.spec.next_backoff(state.failures) if failing else state.spec.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.trigger.wait(), jittered(wait))
            async with self.slots:
                # cleared only now: a poke that came while waiting for a slot is news this pass
                # reads anyway, so it must not also cut the pass's health wait short
                state.trigger.clear()
                try:
                    await self.reconcile(state)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug must not kill the app's worker; log it and retry later
                    log.exception("reconcile of %s crashed", state.spec.key)
                    state.failures += 1

    async def _hold(self, state: AppState, ready: tuple[bool, str, str], busy: bool) -> None:
        await self.status.app(state, AppStatusChange(reconciling=busy, ready=ready))

    async def reconcile(self, state: AppState) -> None:
        """One pass for one app: checks, sync, health, status, audit, events, alerts."""
        spec = state.spec
        if spec.deleting:
            return await self.lifecycle.finalize(state, sync_options(spec))
        await self.lifecycle.adopt(spec)
        if spec.suspend:
            return await self._hold(
                state, (state.ready, "Suspended", "reconciliation is suspended"), False
            )
        if not spec.automated and state.reason == state.handled_request:
            message = "automated sync is off: run `tether reconcile app` to sync"
            return await self._hold(state, (state.ready, "ManualSync", message), False)
        state.handled_request = state.reason
        waiting = self._not_ready_dependencies(spec)
        if waiting:
            asyncio.get_running_loop().call_later(5, state.poke, "dependencies re-checked")
            message = f"waiting for {', '.join(waiting)}"
            return await self._hold(state, (False, "DependencyNotReady", message), True)
        source = await self.app_sources.pin(spec)
        if isinstance(source, NotReady):
            if not source.message:
                return None  # its first fetch is under way and pokes this app when done
            return await self._hold(state, (False, "SourceNotReady", source.message), True)
        await self.quarantines.handle_request(state)
        await self.delivery.resume_rollback(state)
        await self.quarantines.retry_forge(state)
        settled = f"{source.token}:{spec.generation}:{state.reason}"
        healed = self._only_drift(state, settled) and await self._heal(state, source)
        if healed and state.health_checked:
            return None
        if self._quiet(state, settled) and not self.delivery.wants_pass(state):
            return None
        await self.status.app(state, AppStatusChange(reconciling=True))
        try:
            options = await with_identity(self.client, spec, sync_options(spec), self.settings)
        except IdentityMissing as error:
            await self._failed(
                state, str(error), None, "ServiceAccountNotFound", source.revision.commit
            )
            return None
        except TetherError as error:
            await self._failed(state, str(error), None, attempted=source.revision.commit)
            return None
        try:
            sync_source = await source.build()
        except TetherError as error:  # its Secret went missing since the source was fetched
            await self._failed(state, str(error), None, attempted=source.revision.commit)
            return None
        state.identity = options.impersonate
        report, failure = await self._sync(state, sync_source, options)
        if report is None or not report.succeeded:
            await self._failed(state, report.error if report else failure, report)
            return None
        await self._succeeded(state, report, source.chart)
        state.settled = settled
        return None

    async def _sync(
        self, state: AppState, source: SyncSource, options: SyncOptions
    ) -> tuple[SyncReport | None, str]:
        spec, started = state.spec, time.monotonic()
        state.syncing = True
        state.superseded.clear()  # this pass applies what a fast restore wrote: judged after it
        try:
            report = await run_sync(
                source,
                options,
                self.connection,
                audit=self.audit,
                actor=f"agent/{self.settings.identity}",
                kustomize=self.settings.kustomize,
                helm=self.settings.helm,
                client=self.client,
                shape=self.delivery.shaper(state, self.quarantines.shaper),
            )
        except TetherError as error:
            return None, str(error)
        finally:
            state.syncing = False
            metrics.RECONCILE_DURATION.labels(spec.key).observe(time.monotonic() - started)
        return report, ""

    @staticmethod
    def _only_drift(state: AppState, settled: str) -> bool:
        """True when the only news since the last good pass is drift: the revision, spec and
        request are those that pass applied, so putting back what drifted is enough."""
        return state.ready and state.settled == settled and bool(state.drifted)

    async def _heal(self, state: AppState, source: Pinned) -> bool:
        """Apply again what drifted, exactly as the last pass applied it; False (a full pass
        follows) when that is not possible."""
        spec = state.spec
        refs = [ref for ref in state.drifted if ref in state.desired]
        try:
            options = await with_identity(self.client, spec, sync_options(spec), self.settings)
        except TetherError:
            return False
        if options.impersonate != state.identity:
            return False  # the identity changed: a full pass applies everything as the new one
        report = await run_heal(
            [self._healing_body(state, ref) for ref in refs],
            options,
            self.connection,
            audit=self.audit,
            actor=f"agent/{self.settings.identity}",
            client=self.client,
            revision=source.revision,
            source_url=source.url,
        )
        if not report.succeeded:
            log.info("putting drift back failed; a full pass follows", extra={"app": spec.key})
            return False
        for ref in refs:
            state.drifted.pop(ref, None)
            state.drifted_live.pop(ref, None)
        names = ", ".join(str(r) for r in refs)
        metrics.HEALS.labels(spec.key).inc()
        await self.events.record(spec, "Normal", "DriftCorrected", f"restored {names}")
        summary = f"{spec.key}: restored {names}"
        self.alerts.put(alert_for(state, AlertEvent.DRIFT_CORRECTED, summary, objects=names))
        await self.status.app(state, AppStatusChange(drifted=bool(state.drifted)))
        return True

    @staticmethod
    def _healing_body(state: AppState, ref: ObjectRef) -> tuple[Resource, dict[str, Any]]:
        """What the last pass applied, less the fields the App leaves to other controllers
        (judged against the object as last seen, as a full pass would)."""
        resource, body = state.desired[ref]
        return resource, without_ignored(body, state.drifted_live.get(ref), state.spec.ignore)

    @staticmethod
    def _quiet(state: AppState, settled: str) -> bool:
        """True when this tick may be skipped: nothing changed since the last good pass, and
        that pass found the App Healthy (else its health is what this tick is for)."""
        unchanged = (
            state.ready
            and state.health_checked
            and state.healthy
            and state.settled == settled
            and not state.drifted
        )
        if unchanged and state.quiet_passes < FULL_PASS_EVERY - 1:
            state.quiet_passes += 1
            return True
        state.quiet_passes = 0
        return False

    def _not_ready_dependencies(self, spec: AppSpec) -> list[str]:
        apps = self.fleet.apps
        return [d for d in spec.depends_on if not (d in apps and apps[d].ready and apps[d].healthy)]

    async def _failed(
        self,
        state: AppState,
        error: str,
        report: SyncReport | None,
        reason: str = "SyncFailed",
        attempted: str = "",
    ) -> None:
        hint = refusal_hint(error, state.identity)
        if hint:
            error, reason = f"{error} — {hint}", "Forbidden"
        state.failures += 1
        state.ready = False
        metrics.SYNCS.labels(state.spec.key, "failed").inc()
        metrics.APP_READY.labels(state.spec.key).set(0)
        self._remember(state, report, "failed", error)
        await self.status.app(
            state,
            AppStatusChange(
                reconciling=False,
                ready=(False, reason, error),
                stalled=state.failures > state.spec.retry_limit,
                attempted=report.revision.commit if report and report.revision else attempted,
            ),
        )
        await self.events.record(state.spec, "Warning", reason, error)
        summary = f"sync of {state.spec.key} failed: {error}"
        self.alerts.put(alert_for(state, AlertEvent.SYNC_FAILED, summary))
        await self._judge_raced(state)

    @staticmethod
    def _adopt_applied(state: AppState, report: SyncReport) -> None:
        """What ``report`` applied becomes what drift is judged against."""
        applied = [o for o in report.objects if o.resource is not None]
        state.desired = {o.ref: (o.resource, o.body) for o in applied if o.resource is not None}
        state.baseline = {
            o.ref: drift_baseline(o.body, o.dry_run if o.dry_run is not None else o.live)
            for o in applied
        }

    async def _restored(self, state: AppState, report: SyncReport) -> None:
        """A rollback put a stored render back: drift is now judged against it (never healed
        back to the bad version), and the next pass is a full one (it gates the head)."""
        self._adopt_applied(state, report)
        state.drifted.clear()
        state.drifted_live.clear()
        state.settled = ""
        await self._watch_what_was_applied(state)

    async def _succeeded(
        self, state: AppState, report: SyncReport, chart: dict[str, str] | None = None
    ) -> None:
        spec = state.spec
        state.failures = 0
        state.health_checked = False
        self._adopt_applied(state, report)
        corrected = [ref for ref in state.drifted if ref in state.desired]
        state.drifted.clear()
        state.drifted_live.clear()
        revision = report.revision.commit if report.revision else ""
        state.applied_revision = revision
        state.ready = True
        metrics.SYNCS.labels(spec.key, "succeeded").inc()
        metrics.MANAGED_OBJECTS.labels(spec.key).set(len(state.desired))
        metrics.APP_READY.labels(spec.key).set(1)
        summary = report.changes.summary()
        self._remember(state, report, "succeeded", summary)
        await self.quarantines.synced(state)
        await self.status.app(
            state,
            AppStatusChange(
                reconciling=False,
                ready=(True, "Succeeded", f"applied {report.revision}: {summary}"),
                attempted=revision,
                applied=revision,
                drifted=False,
                chart=chart,
            ),
        )
        if report.changes.wrote_anything:
            message = f"applied {report.revision}: {summary}"
            await self.events.record(spec, "Normal", "Synced", message)
            summary = f"{spec.key} synced {report.revision}: {summary}"
            self.alerts.put(alert_for(state, AlertEvent.SYNC_SUCCEEDED, summary))
        if corrected:
            names = ", ".join(str(r) for r in corrected)
            await self.events.record(spec, "Normal", "DriftCorrected", f"restored {names}")
            summary = f"{spec.key}: restored {names}"
            self.alerts.put(alert_for(state, AlertEvent.DRIFT_CORRECTED, summary, objects=names))
        await self._watch_what_was_applied(state)
        await self._judge_raced(state)
        await self._wait_health(state, report)

    async def _watch_what_was_applied(self, state: AppState) -> None:
        """Make sure every kind the app manages is watched. A kind whose informer is new was
        listed after the apply, and that list judged every object present; an object desired but
        absent from it was deleted in the gap, which is drift too."""
        keys = {
            ref: self._watch_key(state, resource, ref)
            for ref, (resource, _) in state.desired.items()
        }
        new = await self.drift.ensure(set(keys.values()))
        gone = [ref for ref, key in keys.items() if key in new and not self.drift.exists(key, ref)]
        for ref in gone:
            await self.drift.on_change(state.spec.inventory_name, ref, None)

    @staticmethod
    def _watch_key(state: AppState, resource: Resource, ref: ObjectRef) -> WatchKey:
        """Objects are watched as the identity that applied them, in their namespace (a
        cluster-wide watch would need the right to list every namespace's objects)."""
        return WatchKey(resource, state.identity, ref.namespace if resource.namespaced else "")

    async def _judge_raced(self, state: AppState) -> None:
        """Changes seen while the sync ran, judged against what it left as desired: an edit that
        raced the sync is still reported as drift (and put back) if the sync did not undo it.
        Those a fast restore superseded wait for the end of the next pass to start."""
        raced = {r: live for r, live in state.raced.items() if r not in state.superseded}
        state.raced = {r: live for r, live in state.raced.items() if r in state.superseded}
        for ref, live in raced.items():
            await self.drift.on_change(state.spec.inventory_name, ref, live)

    async def _wait_health(self, state: AppState, report: SyncReport) -> None:
        """Wait for health, unless something new (drift, a new revision, a request) pokes the
        app first: a deleted object never becomes healthy by waiting, the next pass decides."""
        engine = SyncEngine(
            self.client.impersonating(state.identity) if state.identity else self.client,
            sync_options(state.spec, state.spec.health_timeout),
            inventory_client=self.client,
        )
        waiting = asyncio.create_task(
            engine.wait_healthy([o for o in report.objects if o.resource])
        )
        poked = asyncio.create_task(state.trigger.wait())
        await asyncio.wait({waiting, poked}, return_when=asyncio.FIRST_COMPLETED)
        poked.cancel()
        if not waiting.done():
            log.debug("health wait gave way to a new pass", extra={"app": state.spec.key})
            waiting.cancel()
            await asyncio.gather(waiting, poked, return_exceptions=True)
            return
        health = waiting.result()
        state.healthy = health.status is HealthStatus.HEALTHY
        if state.healthy:
            await self.quarantines.healthy(state)
        self._recheck_unless_healthy(state)
        state.health_checked = True
        metrics.set_health(state.spec.key, health.status.value)
        await self.status.app(state, AppStatusChange(health=health.status.value))
        if health.status is HealthStatus.DEGRADED:
            bad = "; ".join(f"{o.ref}: {o.message}" for o in health.not_healthy()[:5])
            summary = f"{state.spec.key} is degraded: {bad}"
            self.alerts.put(alert_for(state, AlertEvent.HEALTH_DEGRADED, summary))

    @staticmethod
    def _recheck_unless_healthy(state: AppState) -> None:
        """Schedule the next look at an App found not Healthy (``HEALTH_RECHECK``)."""
        if state.healthy:
            state.unhealthy_checks = 0
            return
        delay = min(state.spec.interval, HEALTH_RECHECK * 2 ** min(state.unhealthy_checks, 10))
        state.unhealthy_checks += 1
        asyncio.get_running_loop().call_later(delay, state.poke, "health re-checked")

    @staticmethod
    def _remember(state: AppState, report: SyncReport | None, result: str, message: str) -> None:
        entry = {
            "revision": report.revision.commit if report and report.revision else "",
            "result": result,
            "message": message[:300],
            "finishedAt": now(),
        }
        state.history = [entry, *state.history][:_HISTORY]
