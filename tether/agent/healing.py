"""Judging a change to a managed object: is it drift (a difference from what the app applied,
ignoring what the App says to ignore)? Drift is reported once per object (condition, Event,
metric, alert) and, with ``selfHeal``, the app is poked so that its next pass restores it."""

from __future__ import annotations

import logging
from typing import Any

from tether.agent import metrics
from tether.agent.alerts import AlertQueue
from tether.agent.events import EventRecorder
from tether.agent.sources import alert_for
from tether.agent.state import AppState, Fleet
from tether.agent.status import AppStatusChange, StatusWriter
from tether.core import ObjectRef
from tether.core.compare import drifted_fields
from tether.core.hooks import vanishes_when_finished
from tether.core.ignore import without_ignored
from tether.notify import AlertEvent

log = logging.getLogger("tether.agent")


class DriftJudge:
    """The callback of the drift informers."""

    def __init__(
        self, fleet: Fleet, status: StatusWriter, events: EventRecorder, alerts: AlertQueue
    ) -> None:
        self.fleet = fleet
        self.status = status
        self.events = events
        self.alerts = alerts

    async def on_change(
        self, inventory_name: str, ref: ObjectRef, live: dict[str, Any] | None
    ) -> None:
        state = self.fleet.app_by_inventory(inventory_name)
        if state is None:
            return
        if state.syncing or ref in state.superseded:
            state.raced[ref] = live  # the desired state is being replaced: judge it after
            return
        if ref not in state.desired:
            return
        expected = state.baseline.get(ref) or state.desired[ref][1]
        if live is None and vanishes_when_finished(state.desired[ref][1]):
            return  # a Job deleted by its ttlSecondsAfterFinished: finished, not drift
        fields = drifted_fields(without_ignored(expected, live, state.spec.ignore), live)
        if not fields:
            return
        if ref not in state.drifted:
            state.drifted[ref] = fields
            await self._report(state, ref, live, fields)
        state.drifted[ref], state.drifted_live[ref] = fields, live
        spec = state.spec
        if spec.self_heal and spec.automated and not spec.suspend:
            state.poke(f"drift of {ref}")

    async def _report(
        self, state: AppState, ref: ObjectRef, live: dict[str, Any] | None, fields: list[str]
    ) -> None:
        what = "deleted" if live is None else f"changed: {', '.join(fields[:10])}"
        metrics.DRIFT.labels(state.spec.key, ref.kind).inc()
        log.info(
            "drift detected",
            extra={"app": state.spec.key, "object": str(ref), "fields": fields[:10]},
        )
        await self.events.record(state.spec, "Warning", "DriftDetected", f"{ref} {what}")
        summary = f"{state.spec.key}: {ref} {what}"
        details = {"object": str(ref), "fields": ", ".join(fields[:10])}
        self.alerts.put(alert_for(state, AlertEvent.DRIFT_DETECTED, summary, **details))
        await self.status.app(state, AppStatusChange(drifted=True))
