"""The agent's side of progressive delivery: each App with ``spec.delivery`` gets a shaper for
its passes (``tether.delivery.runner``), and an outlet through which the runner writes the
App's status, Events, alerts, audit rows and metrics, and asks for the next pass.

A rollback an abort asks for is written to ``status.pendingRollback`` with the Aborted status
and cleared once it has run: a replica killed in between leaves it to the next pass of
whichever replica leads next (``AgentDelivery.resume_rollback``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from tether.agent import crds, metrics
from tether.agent.alerts import AlertQueue
from tether.agent.events import EventRecorder
from tether.agent.sources import alert_for
from tether.agent.state import AppState
from tether.agent.status import ROLLOUT_CONDITION, AppStatusChange, StatusWriter
from tether.audit import AuditStore, DeliveryRecord
from tether.cluster.client import KubeClient
from tether.core import Manifest, ObjectRef, Revision
from tether.delivery.machine import AGENT
from tether.delivery.model import Phase, RolloutStatus, read_delivery, read_request
from tether.delivery.rollback import RollbackHost, abort
from tether.delivery.runner import AppRollouts, DeliveryRunner
from tether.delivery.shaping import split_templates
from tether.errors import AuditError, TetherError
from tether.notify import AlertEvent
from tether.reconcile.run import ManifestShaper

log = logging.getLogger("tether.agent")
PENDING_ROLLBACK = "pendingRollback"
# The quarantine's gate around delivery's shaping (tether.agent.quarantine.Quarantines.shaper).
Gate = Callable[[AppState, ManifestShaper | None], ManifestShaper]


class AgentDelivery:
    """Rollouts of every App in this replica; ``shaper`` is called once per pass."""

    def __init__(
        self,
        client: KubeClient,
        status: StatusWriter,
        events: EventRecorder,
        alerts: AlertQueue,
        audit: AuditStore,
        *,
        hold_rollbacks: bool = False,
        crash_after_fast_restore: bool = False,
    ) -> None:
        self.client = client
        self.status = status
        self.events = events
        self.alerts = alerts
        self.audit = audit
        self.runner = DeliveryRunner(client)
        self.apps: dict[str, AppRollouts] = {}
        self.states: dict[str, AppState] = {}  # the worker state each App's rollouts serve
        # rollback and quarantine (tether.agent.quarantine), set once the App workers made it
        self.rollback_host: RollbackHost | None = None
        self.rollbacks: dict[str, asyncio.Task[None]] = {}  # running, by App
        self.hold_rollbacks = hold_rollbacks  # tests only: AgentSettings.test_hold_rollbacks
        # tests only: AgentSettings.test_crash_after_fast_restore
        self.crash_after_fast_restore = crash_after_fast_restore

    def shaper(self, state: AppState, gate: Gate) -> ManifestShaper:
        """How this pass shapes ``state``'s render: the App's AnalysisTemplates taken out (they
        are read, never applied), then ``gate`` (the quarantine's, which sees the render as
        it would be applied) around delivery's own shaping (none without ``spec.delivery``)."""
        spec = state.spec
        if not spec.delivery and not _held_rollouts(state):
            self.forget(spec.key)
            return gate(state, None)
        rollouts = self.apps.get(spec.key)
        if rollouts is not None and self.states.get(spec.key) is not state:  # a new worker
            self.forget(spec.key)
            rollouts = None
        if rollouts is None:
            rollouts = AppRollouts(spec.key, spec.destination, _Outlet(self, state))
            self.apps[spec.key], self.states[spec.key] = rollouts, state
        templates: list[Manifest] = []

        async def rollout(revision: Revision, manifests: list[Manifest]) -> list[Manifest]:
            rollouts.identity = state.identity  # analyses run as the App is applied
            specs = read_delivery(state.spec.delivery, state.spec.key)
            request = read_request(
                dict(state.spec.rollout_request), state.spec.rollout_request_writer
            )
            return await self.runner.shape(rollouts, specs, request, revision, manifests, templates)

        gated = gate(state, rollout)

        async def shape(revision: Revision, manifests: list[Manifest]) -> list[Manifest]:
            applied, templates[:] = split_templates(manifests)
            return await gated(revision, applied)

        return shape

    def wants_pass(self, state: AppState) -> bool:
        """True when a quiet tick must still run a pass: a rollout is moving, or a person's
        gesture has not been acted on."""
        rollouts = self.apps.get(state.spec.key)
        if rollouts is None or not state.spec.delivery:
            return False
        request = read_request(dict(state.spec.rollout_request), state.spec.rollout_request_writer)
        handled = {s.handled_action for s in (rollouts.statuses or {}).values()}
        return rollouts.moving or (request is not None and request.key not in handled)

    def forget(self, key: str) -> None:
        rollouts = self.apps.pop(key, None)
        self.states.pop(key, None)
        if rollouts is not None:
            rollouts.stop()

    def stop(self) -> None:
        """This replica stops leading: its analyses, gates and rollbacks stop, and what it
        knew of each rollout is dropped (the next leader reads the Apps' status)."""
        for key in list(self.apps):
            self.forget(key)
        for task in self.rollbacks.values():
            task.cancel()
        self.rollbacks.clear()

    async def resume_rollback(self, state: AppState) -> None:
        """Run the rollback ``status.pendingRollback`` asks for, unless it already runs here:
        a replica that died between an abort and its rollback left it there."""
        pending = (await self.status.current(state)).get(PENDING_ROLLBACK)
        if pending:
            self.start_rollback(state, {k: str(v) for k, v in dict(pending).items()})

    def start_rollback(self, state: AppState, request: Mapping[str, str]) -> None:
        """Run ``request`` in the background once the pass under way has ended."""
        key = state.spec.key
        running = self.rollbacks.get(key)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(_Outlet(self, state).run_rollback(request))
        self.rollbacks[key] = task


class _Outlet:
    """The runner's view of one App in the agent."""

    def __init__(self, delivery: AgentDelivery, state: AppState) -> None:
        self.delivery = delivery
        self.state = state

    async def load(self) -> Mapping[str, Any]:
        state = self.state
        if state.status is None:
            resource = await self.delivery.client.resource(crds.API_VERSION, "App")
            current = await self.delivery.client.get(
                resource, state.spec.namespace, state.spec.name
            )
            state.status = dict((current or {}).get("status") or {})
        return dict(state.status.get("delivery") or {})

    async def save(
        self, delivery: dict[str, Any], rollback: Mapping[str, str] | None = None
    ) -> None:
        fields = {PENDING_ROLLBACK: dict(rollback)} if rollback else None
        held = (self.state.status or {}).get("delivery") or {}
        left = {key: None for key, raw in held.items() if raw is not None and key not in delivery}
        condition = _condition(delivery)
        change = AppStatusChange(
            delivery={**delivery, **left},  # a merge patch drops a target only when told so
            rollout=condition,
            # no target under delivery: no Rollout condition, as on an App that never had one
            removed=() if condition is not None else (ROLLOUT_CONDITION,),
            fields=fields,
        )
        await self.delivery.status.app(self.state, change)

    async def event(self, type_: str, reason: str, message: str) -> None:
        await self.delivery.events.record(self.state.spec, type_, reason, message)

    def alert(self, event: str, severity: str, summary: str) -> None:
        alert = alert_for(self.state, AlertEvent(event), summary)
        self.delivery.alerts.put(alert)

    async def audit(self, target: str, kind: str, record: dict[str, Any]) -> None:
        spec = self.state.spec
        if kind == "measurement":
            metrics.ANALYSIS_MEASUREMENTS.labels(spec.key, target, record.get("phase", "")).inc()
        elif kind == "decision":
            metrics.ROLLOUT_DECISIONS.labels(spec.key, target, record.get("decision", "")).inc()
        row = DeliveryRecord(
            app=spec.inventory_name,
            target=target,
            kind=kind,
            actor=str(record.get("actor") or f"agent/{self.delivery.events.identity}"),
            revision=str(record.get("revision") or self.state.applied_revision),
            data=record,
        )
        try:
            await asyncio.to_thread(self.delivery.audit.record_delivery, row)
        except AuditError as error:
            log.warning("could not audit a rollout %s: %s", kind, error)

    def observe(self, target: str, status: RolloutStatus) -> None:
        key = self.state.spec.key
        for phase in Phase:
            value = 1.0 if phase is status.phase else 0.0
            metrics.ROLLOUT_PHASE.labels(key, target, phase.value).set(value)
        metrics.ROLLOUT_STEP.labels(key, target).set(status.step)
        metrics.ROLLOUT_WEIGHT.labels(key, target).set(status.weight)

    def forget(self, target: str) -> None:
        for metric in _TARGET_SERIES:
            _drop_series(metric, self.state.spec.key, target)

    def poke(self, after: float, why: str) -> None:
        if after <= 0:
            self.state.poke(why)
        else:
            asyncio.get_running_loop().call_later(after, self.state.poke, why)

    def superseding(self, refs: Sequence[ObjectRef]) -> None:
        self.state.superseded.update(refs)

    def restored(self, target: str) -> None:
        if self.delivery.crash_after_fast_restore:
            log.warning(
                "%s: crashing after the fast restore of %s (tests only)",
                self.state.spec.key,
                target,
            )
            os.kill(os.getpid(), signal.SIGKILL)

    def rollback(self, request: Mapping[str, str]) -> None:
        self.delivery.start_rollback(self.state, request)

    async def run_rollback(self, request: Mapping[str, str]) -> None:
        """``request`` run once, then cleared from ``status.pendingRollback`` (failed or not:
        a failure is an Event and an alert, and a person's ``tether rollback`` is the retry)."""
        host, spec = self.delivery.rollback_host, self.state.spec
        if host is None or self.delivery.hold_rollbacks:
            return
        while self.state.syncing:  # the pass that aborted applies first; the rollback follows
            await asyncio.sleep(0.2)
        actor = request.get("actor", AGENT)
        who = f"agent/{self.delivery.events.identity}" if actor == AGENT else actor
        reason = request.get("reason", "")
        evidence = request.get("evidence", "") or reason
        try:
            result = await abort(host, spec.key, reason=reason, evidence=evidence, actor=who)
        except TetherError as error:
            await self._rollback_done()
            await self.event("Warning", "RollbackFailed", str(error))
            self.alert("RolloutAborted", "error", f"{spec.key}: rollback failed: {error}")
            return
        await self._rollback_done()
        await self.event(
            "Normal",
            "RolledBack",
            f"rolled back to {result.stable.revision} ({reason}); "
            f"{result.entry.revision[:12]} quarantined",
        )
        self.state.poke("rolled back")

    async def _rollback_done(self) -> None:
        change = AppStatusChange(fields={PENDING_ROLLBACK: None})
        await self.delivery.status.app(self.state, change)


def _held_rollouts(state: AppState) -> bool:
    """True when the App's status still holds a rollout or its ``Rollout`` condition
    (delivery was just taken out of its spec: one more pass through the runner drops them and
    the candidates)."""
    status = state.status or {}
    held = status.get("delivery") or {}
    conditions = status.get("conditions") or []
    return any(raw is not None for raw in held.values()) or any(
        c.get("type") == ROLLOUT_CONDITION for c in conditions
    )


def _condition(delivery: Mapping[str, Any]) -> tuple[bool | None, str, str] | None:
    """The App's ``Rollout`` condition: True when every target is promoted, False when one
    needs a person (aborted, frozen, inconclusive), Unknown while one progresses; None when no
    target is under delivery (the condition is then removed, decision 0030)."""
    keyed = {k: s for k, raw in delivery.items() if (s := RolloutStatus.of(raw)) is not None}
    if not keyed:
        return None
    stuck = [(k, s) for k, s in keyed.items() if s.phase in _STUCK]
    moving = [(k, s) for k, s in keyed.items() if s.phase.active]
    if stuck:
        key, status = stuck[0]
        return False, status.phase.value, f"{key}: {status.message}"
    if moving:
        key, status = moving[0]
        progress = f"step {status.step}, weight {status.weight}%"
        return None, status.phase.value, f"{key}: {progress}: {status.message}"
    key, status = next(iter(keyed.items()))
    return True, status.phase.value, f"{key}: {status.message}"


_STUCK = (Phase.ABORTED, Phase.FROZEN, Phase.INCONCLUSIVE)
# The metrics of one target's rollouts, labelled (app, target[, phase or decision]).
_TARGET_SERIES = (
    metrics.ROLLOUT_PHASE,
    metrics.ROLLOUT_STEP,
    metrics.ROLLOUT_WEIGHT,
    metrics.ANALYSIS_MEASUREMENTS,
    metrics.ROLLOUT_DECISIONS,
)


def _drop_series(metric: MetricWrapperBase, app: str, target: str) -> None:
    """Remove every series of ``metric`` labelled with ``app`` and ``target`` (a sample's
    labels come in the metric's label order)."""
    found = {
        tuple(sample.labels.values())
        for family in metric.collect()
        for sample in family.samples
        if sample.labels.get("app") == app and sample.labels.get("target") == target
    }
    for labels in found:
        with contextlib.suppress(KeyError):
            metric.remove(*labels)
