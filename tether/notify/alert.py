"""What an alert says: the event, the app it is about, how severe it is, and one line for people.

Alerts are plain values built by the caller (the reconcile loop or the agent) from a sync's
outcome; every sink renders the same ``Alert`` into its own payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

INFO = "info"
WARNING = "warning"
ERROR = "error"
SEVERITIES = (INFO, WARNING, ERROR)


class AlertEvent(StrEnum):
    """Something worth telling people about one app."""

    SYNC_SUCCEEDED = "SyncSucceeded"
    SYNC_FAILED = "SyncFailed"
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_CORRECTED = "DriftCorrected"
    HEALTH_DEGRADED = "HealthDegraded"
    SOURCE_UNREACHABLE = "SourceUnreachable"
    # progressive delivery (tether.delivery): a rollout that needs a person, or ended
    ROLLOUT_ABORTED = "RolloutAborted"
    ROLLOUT_FROZEN = "RolloutFrozen"
    ROLLOUT_INCONCLUSIVE = "RolloutInconclusive"
    ROLLOUT_PROMOTED = "RolloutPromoted"

    @property
    def default_severity(self) -> str:
        return _DEFAULT_SEVERITY[self]


_DEFAULT_SEVERITY = {
    AlertEvent.SYNC_SUCCEEDED: INFO,
    AlertEvent.SYNC_FAILED: ERROR,
    AlertEvent.DRIFT_DETECTED: WARNING,
    AlertEvent.DRIFT_CORRECTED: INFO,
    AlertEvent.HEALTH_DEGRADED: ERROR,
    AlertEvent.SOURCE_UNREACHABLE: WARNING,
    AlertEvent.ROLLOUT_ABORTED: ERROR,
    AlertEvent.ROLLOUT_FROZEN: ERROR,
    AlertEvent.ROLLOUT_INCONCLUSIVE: WARNING,
    AlertEvent.ROLLOUT_PROMOTED: INFO,
}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One event about one app, ready to send.

    ``severity`` defaults to the event's (see :attr:`AlertEvent.default_severity`). ``summary``,
    ``revision`` and ``details`` are sent as given: they must already be free of secrets.
    ``timestamp`` is normalised to UTC; a naive datetime is taken to be UTC.
    """

    event: AlertEvent
    app: str
    namespace: str
    summary: str
    severity: str = ""
    revision: str = ""
    details: dict[str, str] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        event = AlertEvent(self.event)
        object.__setattr__(self, "event", event)
        if not self.severity:
            object.__setattr__(self, "severity", event.default_severity)
        elif self.severity not in SEVERITIES:
            raise ValueError(
                f"alert {event} for {self.namespace}/{self.app}: severity {self.severity!r} "
                f"is not one of {', '.join(SEVERITIES)}"
            )
        stamp = self.timestamp
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        object.__setattr__(self, "timestamp", stamp)

    @property
    def timestamp_text(self) -> str:
        """The timestamp as RFC 3339 in UTC with milliseconds: ``2025-05-01T12:00:00.000Z``."""
        return self.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
