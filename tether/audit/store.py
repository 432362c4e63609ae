"""The audit store: append rows, read an app's history. There is no update and no delete.

SQLite (the default, one file per machine) is opened in WAL mode with a busy timeout, so the CLI
and an agent on the same machine can write at the same time. PostgreSQL is for teams: every
agent and every laptop writes to one shared trail.

The API is synchronous: code running in an event loop calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from tether.audit import renders as render_rows
from tether.audit.delivery import DeliveryRecord, delivery_records
from tether.audit.record import SyncRecord
from tether.audit.renders import RenderRecord
from tether.audit.schema import count_columns, create_schema, sync_records
from tether.audit.url import Target, resolve
from tether.core import ChangeSet, Revision
from tether.errors import AuditError

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10
_T = TypeVar("_T")


class AuditStore:
    """An append-only trail of syncs in SQLite or PostgreSQL (see ``tether.audit.url``)."""

    def __init__(self, url: str | None = None) -> None:
        self._target = resolve(url)
        self._closed = False
        try:
            self._engine = _engine(self._target)
            self._create_schema()
        except (SQLAlchemyError, OSError) as exc:
            self._fail("could not be opened", exc, self._open_hint())

    @property
    def url(self) -> str:
        """The database this store writes to, password masked."""
        return self._target.display

    def record(self, record: SyncRecord) -> SyncRecord:
        """Append ``record``; return it with the ``id`` the database gave it."""
        self._check_open()
        statement = sa.insert(sync_records).values(**_row(record))
        try:
            with self._engine.begin() as connection:
                inserted = connection.execute(statement).inserted_primary_key
        except SQLAlchemyError as exc:
            self._fail(
                f"could not record the sync of app {record.app!r}",
                exc,
                "check that the database is reachable, writable and not full",
            )
        assert inserted is not None  # None only for executemany, which this is not
        return dataclasses.replace(record, id=int(inserted[0]))

    def history(self, app: str, limit: int = 20) -> list[SyncRecord]:
        """``app``'s most recent syncs, newest first, at most ``limit`` of them."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        self._check_open()
        columns = sync_records.c
        statement = (
            sa.select(sync_records)
            .where(columns.app == app)
            .order_by(columns.started_at.desc(), columns.id.desc())
            .limit(limit)
        )
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(statement).mappings().all()
        except SQLAlchemyError as exc:
            self._fail(
                f"could not read the history of app {app!r}",
                exc,
                "check that the database is reachable",
            )
        return [_record(row) for row in rows]

    def record_delivery(self, record: DeliveryRecord) -> None:
        """Append one rollout decision, measurement or abort."""
        self._check_open()
        try:
            with self._engine.begin() as connection:
                connection.execute(sa.insert(delivery_records).values(**record.row()))
        except SQLAlchemyError as exc:
            self._fail(
                f"could not record a {record.kind} of app {record.app!r}",
                exc,
                "check that the database is reachable, writable and not full",
            )

    def delivery_history(self, app: str, limit: int = 100) -> list[DeliveryRecord]:
        """``app``'s rollout decisions, measurements and aborts, oldest first (the last
        ``limit`` of them)."""
        self._check_open()
        columns = delivery_records.c
        statement = (
            sa.select(delivery_records)
            .where(columns.app == app)
            .order_by(columns.at.desc(), columns.id.desc())
            .limit(limit)
        )
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(statement).mappings().all()
        except SQLAlchemyError as exc:
            self._fail(
                f"could not read the rollouts of app {app!r}",
                exc,
                "check that the database is reachable",
            )
        return [DeliveryRecord.of(row) for row in reversed(rows)]

    def last(self, app: str) -> SyncRecord | None:
        """``app``'s most recent sync, or None if it was never synced."""
        newest = self.history(app, limit=1)
        return newest[0] if newest else None

    # -- healthy renders (tether.audit.renders) ---------------------------------------------

    def record_render(self, record: RenderRecord) -> bool:
        """Keep ``record`` as ``record.app``'s newest healthy render, unless its newest one
        already has that digest (then only its commit is remembered as applying it); True when
        a render was added."""
        self._check_open()
        try:
            with self._engine.begin() as connection:
                return render_rows.insert_if_changed(connection, record)
        except SQLAlchemyError as exc:
            self._fail(
                f"could not record the healthy render of app {record.app!r}",
                exc,
                "check that the database is reachable, writable and not full",
            )

    def last_good_render(
        self, app: str, excluding: frozenset[str] = frozenset()
    ) -> RenderRecord | None:
        """``app``'s newest healthy render whose digest is not in ``excluding`` (the
        quarantined ones), or None when there is none."""
        found = self._read(app, lambda c: render_rows.newest(c, app, limit=1, excluding=excluding))
        return found[0] if found else None

    def render_at(self, app: str, revision: str) -> RenderRecord | None:
        """``app``'s newest healthy render applied at the commit ``revision`` (full or short
        SHA): recorded then, or the same render applied again then."""
        return self._read(app, lambda c: render_rows.at_revision(c, app, revision))

    def renders(self, app: str, limit: int = 20) -> list[RenderRecord]:
        """``app``'s healthy renders, newest first, each by the newest commit that applied it."""
        return self._read(app, lambda c: render_rows.newest(c, app, limit=limit))

    def _read(self, app: str, query: Callable[[sa.Connection], _T]) -> _T:
        self._check_open()
        try:
            with self._engine.connect() as connection:
                return query(connection)
        except SQLAlchemyError as exc:
            self._fail(
                f"could not read the healthy renders of app {app!r}",
                exc,
                "check that the database is reachable",
            )

    def close(self) -> None:
        """Release the database connections. The store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditStore({self._target.display!r})"

    # -- internals --------------------------------------------------------------------------

    def _create_schema(self) -> None:
        # Two processes creating the schema at the same moment can still collide on PostgreSQL
        # (IF NOT EXISTS is not atomic there); the loser finds the table on its second try.
        for attempt in range(2):
            try:
                with self._engine.begin() as connection:
                    create_schema(connection)
                return
            except DBAPIError:
                if attempt or not sa.inspect(self._engine).has_table(sync_records.name):
                    raise

    def _check_open(self) -> None:
        if self._closed:
            raise AuditError(f"audit store {self._target.display} was closed; open a new one")

    def _open_hint(self) -> str:
        if self._target.is_sqlite:
            return "check that its directory is writable and the file is a SQLite database"
        return (
            "check that the PostgreSQL server is running and reachable from here, and that the "
            "user, password and database in the URL are right"
        )

    def _fail(self, what: str, exc: BaseException, hint: str) -> NoReturn:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        detail = " ".join(str(reason).split()) or type(reason).__name__
        message = f"audit store {self._target.display} {what}: {detail}; {hint}"
        raise AuditError(self._target.scrub(message)) from exc


def _engine(target: Target) -> sa.Engine:
    if not target.is_sqlite:
        return sa.create_engine(
            target.url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
        )
    if target.sqlite_path is None:  # in memory: one connection shared, or each would see its own
        return sa.create_engine(
            target.url, poolclass=sa.StaticPool, connect_args={"check_same_thread": False}
        )
    target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(target.url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _into_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable across crashes in WAL mode
    finally:
        cursor.close()


def _into_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL. The switch needs the file to itself, and SQLite answers "database
    is locked" at once, without its busy timeout, while another process opens the same new
    file: asked again for up to the busy timeout (two stores created together hit it)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _row(record: SyncRecord) -> dict[str, Any]:
    revision = record.revision
    return {
        "app": record.app,
        "started_at": record.started_at,
        "duration_seconds": record.duration_seconds,
        "result": record.result,
        "error": record.error,
        "health": record.health,
        "actor": record.actor,
        "source_url": record.source_url,
        "revision_url": revision.url if revision else None,
        "revision_ref": revision.ref if revision else None,
        "revision_commit": revision.commit if revision else None,
        "revision_author": revision.author if revision else None,
        "revision_subject": revision.subject if revision else None,
        "dry_run": record.changes.dry_run,
        "changes": record.changes.to_list(),
        **count_columns(record.changes.counts()),
    }


def _record(row: sa.RowMapping) -> SyncRecord:
    revision = None
    if row["revision_commit"] is not None:
        revision = Revision(
            url=row["revision_url"] or "",
            ref=row["revision_ref"] or "",
            commit=row["revision_commit"],
            author=row["revision_author"] or "",
            subject=row["revision_subject"] or "",
        )
    changes = ChangeSet.from_list(row["changes"])
    changes.dry_run = bool(row["dry_run"])
    return SyncRecord(
        app=row["app"],
        source_url=row["source_url"],
        revision=revision,
        changes=changes,
        result=row["result"],
        error=row["error"],
        started_at=row["started_at"],
        duration_seconds=float(row["duration_seconds"]),
        actor=row["actor"],
        health=row["health"],
        id=int(row["id"]),
    )
