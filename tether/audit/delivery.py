"""Delivery's rows in the audit trail: every gate decision and every analysis measurement.

One row per record, append-only like the sync records: the App, the rollout's target, what kind
of record it is (``decision``, ``measurement``, ``abort``), when, who decided (the agent, or the
person whose ``tether rollout`` gesture it was), at which commit, and the record itself as JSON
(a decision's reason, a measurement's value and phase, an abort's evidence). Measurements are
masked before they get here (``tether.analysis.masking``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tether.audit.schema import UTCDateTime, metadata

DELIVERY_TABLE = "tether_delivery_records"
KINDS = ("decision", "measurement", "abort")

delivery_records = sa.Table(
    DELIVERY_TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String, nullable=False),
    sa.Column("target", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("revision", sa.String, nullable=False),
    sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    sa.Index("ix_tether_delivery_records_app_at", "app", "at"),
)


@dataclass(frozen=True)
class DeliveryRecord:
    """One decision, measurement or abort of one App's rollout."""

    app: str
    target: str  # Deployment/web
    kind: str
    actor: str
    revision: str
    data: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None

    def row(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "target": self.target,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
            "revision": self.revision,
            "data": self.data,
        }

    @classmethod
    def of(cls, row: sa.RowMapping) -> DeliveryRecord:
        return cls(
            app=row["app"],
            target=row["target"],
            kind=row["kind"],
            actor=row["actor"],
            revision=row["revision"],
            data=dict(row["data"] or {}),
            at=row["at"],
            id=int(row["id"]),
        )
