"""Prometheus Alertmanager, through its API v2 (``POST <base>/api/v2/alerts``).

Each alert becomes one Alertmanager alert whose identity is its labels::

    labels:      alertname=<event>, app, namespace, severity, source="tether"
    annotations: summary, revision (when known), one per detail (keys made label-safe)
    startsAt:    the alert's timestamp

Some events end a condition another event started. Those are sent as the *resolution* of the
firing alert instead of as an alert of their own: the same labels as the firing alert (its
``alertname`` and severity) with ``endsAt`` set, and the resolving summary as annotations:

    DriftCorrected  resolves  DriftDetected
    SyncSucceeded   resolves  SyncFailed and SourceUnreachable   (a sync that succeeded fetched)

HealthDegraded has no partner: it resolves through Alertmanager's ``resolve_timeout`` (firing
alerts are sent without ``endsAt``), so senders should repeat it while the app stays degraded.

The severity label is part of the identity, so :class:`AlertmanagerAlerts` remembers the severity
each firing alert was sent with and resolves with the same one (after a restart it falls back to
the event's default severity).
"""

from __future__ import annotations

import re
from typing import Any

from tether.notify.alert import Alert, AlertEvent

API_PATH = "/api/v2/alerts"
SOURCE = "tether"
RESOLVES: dict[AlertEvent, tuple[AlertEvent, ...]] = {
    AlertEvent.DRIFT_CORRECTED: (AlertEvent.DRIFT_DETECTED,),
    AlertEvent.SYNC_SUCCEEDED: (AlertEvent.SYNC_FAILED, AlertEvent.SOURCE_UNREACHABLE),
}
_RESERVED_ANNOTATIONS = {"summary", "revision", "resolvedBy"}
_NOT_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9_]")


def alerts_url(base: str) -> str:
    """Where alerts are posted for an Alertmanager at ``base``."""
    return base.rstrip("/") + API_PATH


class AlertmanagerAlerts:
    """Builds Alertmanager bodies, remembering the severity of what fired so it can resolve it."""

    def __init__(self) -> None:
        self._fired: dict[tuple[str, str, AlertEvent], str] = {}

    def payload(self, alert: Alert) -> list[dict[str, Any]]:
        """The JSON list to post for ``alert``."""
        annotations = _annotations(alert)
        if alert.event not in RESOLVES:
            return [
                {
                    "labels": _labels(alert, alert.event, alert.severity),
                    "annotations": annotations,
                    "startsAt": alert.timestamp_text,
                }
            ]
        return [
            {
                "labels": _labels(alert, firing, self._severity(alert, firing)),
                "annotations": {**annotations, "resolvedBy": str(alert.event)},
                "startsAt": alert.timestamp_text,
                "endsAt": alert.timestamp_text,
            }
            for firing in RESOLVES[alert.event]
        ]

    def delivered(self, alert: Alert) -> None:
        """Record that ``alert`` reached Alertmanager."""
        if alert.event in RESOLVES:
            for firing in RESOLVES[alert.event]:
                self._fired.pop((alert.namespace, alert.app, firing), None)
        else:
            self._fired[(alert.namespace, alert.app, alert.event)] = alert.severity

    def _severity(self, alert: Alert, firing: AlertEvent) -> str:
        return self._fired.get((alert.namespace, alert.app, firing), firing.default_severity)


def _labels(alert: Alert, alertname: AlertEvent, severity: str) -> dict[str, str]:
    return {
        "alertname": str(alertname),
        "app": alert.app,
        "namespace": alert.namespace,
        "severity": severity,
        "source": SOURCE,
    }


def _annotations(alert: Alert) -> dict[str, str]:
    annotations = {"summary": alert.summary}
    if alert.revision:
        annotations["revision"] = alert.revision
    for key, value in alert.details.items():
        annotations[_annotation_name(key)] = value
    return annotations


def _annotation_name(key: str) -> str:
    """``key`` as a valid Alertmanager annotation name (``[A-Za-z_][A-Za-z0-9_]*``)."""
    name = _NOT_NAME_CHARACTER.sub("_", key)
    if not name or name[0].isdigit():
        name = "_" + name
    return f"detail_{name}" if name in _RESERVED_ANNOTATIONS else name
