"""Health vocabulary: per-object status and the worst-of rule for an app.

Severity order (an app is as healthy as its least healthy object):
``Healthy < Progressing < Missing < Degraded < Unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tether.core.objects import ObjectRef


class HealthStatus(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    @property
    def severity(self) -> int:
        return _SEVERITY.index(self)

    @staticmethod
    def worst(statuses: list[HealthStatus]) -> HealthStatus:
        """The most severe of ``statuses``; Healthy when there are none."""
        return max(statuses, key=lambda s: s.severity, default=HealthStatus.HEALTHY)


_SEVERITY = [
    HealthStatus.HEALTHY,
    HealthStatus.PROGRESSING,
    HealthStatus.MISSING,
    HealthStatus.DEGRADED,
    HealthStatus.UNKNOWN,
]


@dataclass(frozen=True)
class ObjectHealth:
    """One object's health with a short human reason (e.g. ``1/3 replicas updated``)."""

    ref: ObjectRef
    status: HealthStatus
    message: str = ""


@dataclass
class HealthReport:
    """Every managed object's health; the app's status is the worst of them."""

    objects: list[ObjectHealth] = field(default_factory=list)

    @property
    def status(self) -> HealthStatus:
        return HealthStatus.worst([o.status for o in self.objects])

    def not_healthy(self) -> list[ObjectHealth]:
        return [o for o in self.objects if o.status is not HealthStatus.HEALTHY]
