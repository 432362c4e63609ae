"""Delivery decisions: who decided what about an app, why, and at which commit.

A rollback, a quarantine set or lifted, a revert pull request opened, a commit status set, a
gate passed or failed: each is one row, appended, never changed. ``actor`` is a person (from
the request they made, e.g. ``alice`` through ``tether rollback``) or ``agent/<identity>``;
``reason`` is theirs, in their words; ``detail`` holds the rest (URLs, numbers, evidence
summaries), never a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tether.audit.schema import decisions

ROLLBACK = "rollback"
QUARANTINE = "quarantine"
QUARANTINE_LIFTED = "quarantine-lifted"
QUARANTINE_SKIPPED = "quarantine-skipped"
REVERT_OPENED = "revert-opened"
REVERT_PENDING = "revert-pending"
COMMIT_STATUS = "commit-status"


@dataclass(frozen=True)
class DecisionRecord:
    """One decision about one app's delivery."""

    app: str
    kind: str
    actor: str
    reason: str
    revision: str = ""  # the commit decided about
    digest: str = ""  # its render digest
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None


def insert(connection: sa.Connection, record: DecisionRecord) -> int:
    row = {
        "app": record.app,
        "at": record.at,
        "kind": record.kind,
        "actor": record.actor,
        "reason": record.reason,
        "revision_commit": record.revision,
        "digest": record.digest,
        "detail": record.detail,
    }
    inserted = connection.execute(sa.insert(decisions).values(**row)).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def newest(connection: sa.Connection, app: str, limit: int) -> list[DecisionRecord]:
    statement = (
        sa.select(decisions)
        .where(decisions.c.app == app)
        .order_by(decisions.c.id.desc())
        .limit(limit)
    )
    return [
        DecisionRecord(
            app=row["app"],
            kind=row["kind"],
            actor=row["actor"],
            reason=row["reason"],
            revision=row["revision_commit"],
            digest=row["digest"],
            detail=dict(row["detail"] or {}),
            at=row["at"],
            id=int(row["id"]),
        )
        for row in connection.execute(statement).mappings().all()
    ]
