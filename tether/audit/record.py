"""One row of the audit trail: what one sync (or dry run) of one app did, when, and who ran it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tether.core import ChangeSet, Revision

SUCCEEDED = "succeeded"
FAILED = "failed"
DRY_RUN = "dry-run"
RESULTS = (SUCCEEDED, FAILED, DRY_RUN)


@dataclass(frozen=True)
class SyncRecord:
    """What one sync did. Built by the caller from the sync's ChangeSet; the store sets ``id``.

    ``source_url`` and ``error`` must already be free of credentials and secret values: the
    store writes them as given. ``revision`` is None when the source could not be fetched.
    """

    app: str
    source_url: str
    revision: Revision | None
    changes: ChangeSet
    result: str
    error: str
    started_at: datetime
    duration_seconds: float
    actor: str
    health: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise ValueError(f"SyncRecord.result must be one of {RESULTS}, not {self.result!r}")
        if self.started_at.tzinfo is None or self.started_at.utcoffset() is None:
            raise ValueError("SyncRecord.started_at must be timezone-aware (UTC)")
