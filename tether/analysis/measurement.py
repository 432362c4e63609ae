"""Measurements: what one look at a metric gave, as a plain record delivery stores in the audit.

A measurement has a phase (the metric's conditions judged its value), the value itself (plain
JSON: a number, a list of numbers, a mapping, a string, true/false or null), a message saying
why, and when it started and finished. Values and messages have already been masked: a secret
argument or a secret header's value never reaches a Measurement (see ``masking``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Phase(enum.Enum):
    """How one measurement was judged."""

    SUCCESSFUL = "Successful"  # the success condition held (or the failure condition did not)
    FAILED = "Failed"  # the failure condition held (or the success condition did not)
    INCONCLUSIVE = "Inconclusive"  # neither could be decided, or an empty result chosen so
    ERROR = "Error"  # no value: the provider could not be reached or answered nonsense


class EmptyResult(enum.Enum):
    """What an empty result counts as: a choice each metric makes (argo-rollouts#3503).

    Empty means no sample (an instant query matched no series), only NaN samples (0/0: a rate
    over no traffic), a JSON path that matched nothing, or a JSON null.
    """

    SUCCESS = "success"
    FAILURE = "failure"
    INCONCLUSIVE = "inconclusive"


DEFAULT_EMPTY_RESULT = EmptyResult.INCONCLUSIVE


@dataclass(frozen=True)
class Empty:
    """A provider's answer that holds no value, and why (``"the query matched no series"``)."""

    reason: str


@dataclass(frozen=True)
class Measurement:
    """One measurement of one metric."""

    metric: str
    phase: Phase
    value: Any  # plain JSON; None for an error or an empty result
    message: str
    started_at: datetime
    finished_at: datetime

    def to_record(self) -> dict[str, Any]:
        """The measurement as plain JSON, for the audit trail and status."""
        return {
            "metric": self.metric,
            "phase": self.phase.value,
            "value": self.value,
            "message": self.message,
            "startedAt": self.started_at.isoformat(),
            "finishedAt": self.finished_at.isoformat(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Measurement:
        """A measurement read back from the audit trail or status (to resume an analysis)."""
        return cls(
            metric=str(record["metric"]),
            phase=Phase(record["phase"]),
            value=record.get("value"),
            message=str(record.get("message", "")),
            started_at=datetime.fromisoformat(record["startedAt"]),
            finished_at=datetime.fromisoformat(record["finishedAt"]),
        )
