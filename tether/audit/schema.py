"""The audit tables, in SQLAlchemy Core, portable between SQLite and PostgreSQL.

``tether_sync_records``: one row per sync. ``tether_renders``: the renders that became healthy,
one row each time an app's healthy render changes (see ``tether.audit.renders``).
``tether_delivery_records``: rollout and rollback decisions (``tether.audit.delivery``).

A sync's ChangeSet is kept whole as JSON (``ChangeSet.to_list()``) and its counts are copied
into plain integer columns so queries ("every sync that pruned something") need no JSON.

The schema is created on open when missing, table by table, so a database written before a
table existed gains it on its next open (tables are only ever added; no column changes yet:
when one is needed, alembic comes in with a baseline revision matching these tables).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from tether.core import Action

TABLE_NAME = "tether_sync_records"
RENDERS_TABLE_NAME = "tether_renders"


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware in UTC.

    PostgreSQL returns ``timestamptz`` in the session's time zone and SQLite keeps no zone at
    all; both are normalised here. Stored SQLite strings are UTC, so they also sort by time.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("audit timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData()

sync_records = sa.Table(
    TABLE_NAME,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("duration_seconds", sa.Float, nullable=False),
    sa.Column("result", sa.String, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("health", sa.String, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("source_url", sa.Text, nullable=False),
    # The revision's fields; all NULL when the source could not be fetched.
    sa.Column("revision_url", sa.Text),
    sa.Column("revision_ref", sa.String),
    sa.Column("revision_commit", sa.String),
    sa.Column("revision_author", sa.Text),
    sa.Column("revision_subject", sa.Text),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("changes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    # One count per Action (created, configured, unchanged, pruned, skipped, failed).
    *(sa.Column(action.value, sa.Integer, nullable=False) for action in Action),
    sa.Index("ix_tether_sync_records_app_started_at", "app", "started_at"),
)


renders = sa.Table(
    RENDERS_TABLE_NAME,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String, nullable=False),
    sa.Column("digest", sa.String, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("revision_url", sa.Text, nullable=False),
    sa.Column("revision_ref", sa.String, nullable=False),
    sa.Column("revision_commit", sa.String, nullable=False),
    sa.Column("revision_author", sa.Text, nullable=False),
    sa.Column("revision_subject", sa.Text, nullable=False),
    # [{"body": {...}, "source": "path:line"}]: the objects, never a sensitive one
    sa.Column("objects", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    # [{"group", "kind", "namespace", "name"}]: the sensitive objects, by identity only
    sa.Column("withheld", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    sa.Index("ix_tether_renders_app_id", "app", "id"),
)


def create_schema(connection: sa.Connection) -> None:
    """Create the tables and their indexes unless they exist (safe when two processes open at
    once, and for a database written before a table was added)."""
    for table in metadata.sorted_tables:  # sync records, renders, delivery's (audit/delivery.py)
        connection.execute(CreateTable(table, if_not_exists=True))
        for index in table.indexes:
            connection.execute(CreateIndex(index, if_not_exists=True))


def count_columns(counts: dict[Action, int]) -> dict[str, Any]:
    """The counts columns' values for one ChangeSet's ``counts()``."""
    return {action.value: counts.get(action, 0) for action in Action}
