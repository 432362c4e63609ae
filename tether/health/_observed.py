""" "Not observed yet": an object its controller has not reported on, and the grace period.

A kind whose rule expects a status (every rule of the library, and the generic rule for kinds
Tether does not know) is Progressing while it has none: its controller has not seen it yet.
A kind without a controller would then hang a health wait, so the wait is bounded by a grace
period counted from the object's last apply (the newest of ``metadata.creationTimestamp`` and
the ``metadata.managedFields`` times of writes to the object itself, not to its status):

- a kind the library knows, still without status after the grace period, is Degraded: its
  controller should have answered by then, and the message asks whether it runs;
- a kind Tether does not know is Healthy after the grace period, with a note: many custom
  resources are plain data that no controller ever writes a status for.

An object whose apply time cannot be read is treated as applied long ago.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tether.health._fields import Fields
from tether.health._verdict import Verdict, degraded, healthy, progressing

DEFAULT_GRACE = 30.0
"""Seconds a controller gets to write the first status of an object after it was applied."""


@dataclass(frozen=True)
class Moment:
    """When an assessment happens, and how long a controller gets to answer."""

    now: datetime
    grace: float = DEFAULT_GRACE

    @classmethod
    def current(cls, grace: float = DEFAULT_GRACE) -> Moment:
        return cls(datetime.now(UTC), grace)


def reported(live: Fields) -> bool:
    """True when a controller wrote something under ``status``."""
    status = live.mapping("status")
    return bool(status)


def awaiting_controller(live: Fields, moment: Moment, what: str, *, known: bool) -> Verdict:
    """The verdict on an object with no status: ``what`` names its kind in messages; ``known``
    says whether a rule expects a controller for it (Degraded after the grace period) or not
    (Healthy with a note)."""
    age = _seconds_since_apply(live, moment.now)
    if age is not None and age < moment.grace:
        return progressing(f"waiting for the controller of {what} to report its status")
    waited = f"{age:.0f}s" if age is not None else "long"
    if known:
        return degraded(
            f"no status {waited} after it was applied: is the controller of {what} installed "
            "and running?"
        )
    return healthy(
        f"no status {waited} after it was applied: taken as a kind without a controller "
        "(add a health check for it if it has one)"
    )


def _seconds_since_apply(live: Fields, now: datetime) -> float | None:
    applied = _applied_at(live)
    return None if applied is None else (now - applied).total_seconds()


def _applied_at(live: Fields) -> datetime | None:
    times = [_timestamp(live.text("metadata.creationTimestamp"))]
    for entry in live.objects("metadata.managedFields"):
        if not entry.text("subresource"):
            times.append(_timestamp(entry.text("time")))
    known = [moment for moment in times if moment is not None]
    return max(known, default=None)


def _timestamp(text: str) -> datetime | None:
    """An RFC 3339 time as the API server writes it (``2026-01-01T00:00:00Z``), or None."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
