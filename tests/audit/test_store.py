"""The audit store against SQLite and a real PostgreSQL: round trips, order, isolation, reopen."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from tether.audit import AuditStore, SyncRecord
from tether.audit.schema import TABLE_NAME
from tether.core import ChangeSet
from tether.errors import AuditError

from .records import T0, changeset, sync


def test_record_and_history_round_trip_every_field(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        saved = store.record(sync())
        assert saved.id is not None
        assert saved == sync(id=saved.id)

        [read] = store.history("shop")

    assert read == saved
    assert read.changes == changeset()
    assert read.started_at == T0
    assert read.started_at.tzinfo is UTC
    assert read.started_at.microsecond == T0.microsecond


def test_failed_sync_without_revision_round_trips(audit_url: str) -> None:
    failed = sync(
        revision=None,
        changes=ChangeSet(),
        result="failed",
        error="git fetch https://git.example.com/platform/apps.git@main: repository not found",
        health="",
        duration_seconds=0.125,
    )
    with AuditStore(audit_url) as store:
        saved = store.record(failed)
        assert store.last("shop") == saved
    assert saved.revision is None


def test_dry_run_round_trips(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        saved = store.record(sync(changes=changeset(dry_run=True), result="dry-run"))
        read = store.last("shop")
    assert read == saved
    assert read is not None and read.changes.dry_run


def test_timestamps_in_other_zones_come_back_as_the_same_instant_in_utc(audit_url: str) -> None:
    tokyo = timezone(timedelta(hours=9))
    with AuditStore(audit_url) as store:
        store.record(sync(started_at=T0.astimezone(tokyo)))
        read = store.last("shop")
    assert read is not None
    assert read.started_at == T0
    assert read.started_at.utcoffset() == timedelta(0)


def test_postgres_session_time_zone_does_not_leak_into_timestamps(postgres_url: str) -> None:
    in_tokyo = postgres_url + "?options=-c%20timezone%3DAsia/Tokyo"
    engine = sa.create_engine(in_tokyo.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW timezone").scalar() == "Asia/Tokyo"
    finally:
        engine.dispose()
    with AuditStore(in_tokyo) as store:
        store.record(sync(app="tz"))
        read = store.last("tz")
    assert read is not None
    assert read.started_at == T0
    assert read.started_at.tzinfo is UTC


def test_history_is_newest_first_and_limited(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        for minutes in (5, 1, 30, 10, 20):
            store.record(sync(minutes=minutes, actor=f"run-{minutes}"))

        newest_first = [r.actor for r in store.history("shop")]
        two = [r.actor for r in store.history("shop", limit=2)]
        none = store.history("shop", limit=0)

    assert newest_first == ["run-30", "run-20", "run-10", "run-5", "run-1"]
    assert two == ["run-30", "run-20"]
    assert none == []


def test_syncs_started_at_the_same_instant_are_newest_recorded_first(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        first = store.record(sync(actor="first"))
        second = store.record(sync(actor="second"))
        assert [r.id for r in store.history("shop")] == [second.id, first.id]


def test_history_of_another_app_is_separate(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        store.record(sync(app="shop", minutes=1))
        store.record(sync(app="billing", minutes=2))
        store.record(sync(app="shop", minutes=3))

        assert [r.started_at for r in store.history("shop")] == [
            T0 + timedelta(minutes=3),
            T0 + timedelta(minutes=1),
        ]
        assert [r.app for r in store.history("billing")] == ["billing"]
        assert store.history("nothing-synced-yet") == []


def test_last_is_the_newest_sync_or_none(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        assert store.last("shop") is None
        store.record(sync(minutes=2, result="failed", error="apply failed"))
        store.record(sync(minutes=1))
        last = store.last("shop")
    assert last is not None
    assert last.result == "failed"
    assert last.started_at == T0 + timedelta(minutes=2)


def test_counts_are_plain_columns_for_queries(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        store.record(sync(app="pruned-something"))
        store.record(sync(app="quiet", changes=ChangeSet()))

    engine = sa.create_engine(audit_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            table = sa.Table(TABLE_NAME, sa.MetaData(), autoload_with=connection)
            counts = [table.c[name] for name in ("created", "configured", "unchanged")]
            counts += [table.c[name] for name in ("pruned", "skipped", "failed")]
            rows = connection.execute(
                sa.select(table.c.app, *counts).where(table.c.pruned > 0)
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [("pruned-something", 1, 1, 1, 1, 1, 1)]


def test_records_survive_reopening(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        saved = store.record(sync())
    with AuditStore(audit_url) as reopened:
        assert reopened.history("shop") == [saved]
        later = reopened.record(sync(minutes=1))
    assert later.id != saved.id


def test_two_stores_writing_concurrently_lose_nothing(audit_url: str) -> None:
    stores_count, threads_per_store, records_per_thread = 2, 4, 25
    stores: list[AuditStore] = []
    errors: list[BaseException] = []
    opened = threading.Barrier(stores_count)
    writing = threading.Barrier(stores_count * threads_per_store)
    lock = threading.Lock()

    def open_store() -> None:
        opened.wait()  # both create the schema at the same moment
        store = AuditStore(audit_url)
        with lock:
            stores.append(store)

    def write(store: AuditStore, writer: int) -> None:
        try:
            writing.wait()
            for n in range(records_per_thread):
                store.record(sync(app="busy", minutes=n, actor=f"writer-{writer}/{n}"))
        except BaseException as exc:
            errors.append(exc)
            raise

    _run_threads([threading.Thread(target=open_store) for _ in range(stores_count)])
    assert len(stores) == stores_count
    try:
        _run_threads(
            [
                threading.Thread(target=write, args=(store, s * threads_per_store + t))
                for s, store in enumerate(stores)
                for t in range(threads_per_store)
            ]
        )
    finally:
        for store in stores:
            store.close()

    assert errors == []
    with AuditStore(audit_url) as reader:
        records = reader.history("busy", limit=10_000)
    expected = {
        f"writer-{w}/{n}"
        for w in range(stores_count * threads_per_store)
        for n in range(records_per_thread)
    }
    assert {r.actor for r in records} == expected
    assert len(records) == len(expected)
    assert len({r.id for r in records}) == len(expected)


def _run_threads(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()


def test_a_plain_path_means_sqlite_and_its_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "tether" / "audit.db"
    with AuditStore(str(path)) as store:
        saved = store.record(sync())
    assert path.is_file()
    with AuditStore(f"sqlite:///{path}") as same:
        assert same.history("shop") == [saved]


def test_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    AuditStore(str(path)).close()
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    finally:
        engine.dispose()
    assert mode == "wal"


def test_no_url_means_sqlite_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_STATE_DIR", str(tmp_path / "state"))
    with AuditStore() as store:
        store.record(sync())
        assert store.url == str(tmp_path / "state" / "audit.db")
    assert (tmp_path / "state" / "audit.db").is_file()


def test_in_memory_sqlite_keeps_records_for_the_life_of_the_store() -> None:
    with AuditStore("sqlite://") as store:
        saved = store.record(sync())
        assert store.history("shop") == [saved]


def test_the_store_can_only_append_and_read() -> None:
    public = {name for name in dir(AuditStore) if not name.startswith("_")}
    assert public == {
        "record",
        "history",
        "last",
        "close",
        "url",
        "record_delivery",
        "delivery_history",
        "record_render",
        "renders",
        "last_good_render",
        "render_at",
    }


def test_a_closed_store_refuses_to_work(tmp_path: Path) -> None:
    store = AuditStore(str(tmp_path / "audit.db"))
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(AuditError, match="was closed"):
        store.record(sync())
    with pytest.raises(AuditError, match="was closed"):
        store.last("shop")


def test_negative_limit_is_a_programming_error(tmp_path: Path) -> None:
    with AuditStore(str(tmp_path / "audit.db")) as store, pytest.raises(ValueError):
        store.history("shop", limit=-1)


def test_records_are_validated() -> None:
    with pytest.raises(ValueError, match="result"):
        sync(result="ok")
    with pytest.raises(ValueError, match="timezone-aware"):
        sync(started_at=datetime(2026, 1, 1))
    assert isinstance(sync(), SyncRecord)


def test_rollout_decisions_and_measurements_are_appended_and_read_in_order(
    tmp_path: Path,
) -> None:
    from tether.audit import DeliveryRecord

    with AuditStore(str(tmp_path / "audit.db")) as store:
        for kind, data in (
            ("decision", {"decision": "started", "reason": "rolling out abc"}),
            ("measurement", {"metric": "error-rate", "phase": "Failed", "value": [0.4]}),
            ("decision", {"decision": "aborted", "reason": "error-rate failed"}),
        ):
            store.record_delivery(
                DeliveryRecord("team.shop", "Deployment/web", kind, "agent/a", "abc", data)
            )
        store.record_delivery(DeliveryRecord("other", "Deployment/x", "decision", "a", "", {}))
        trail = store.delivery_history("team.shop")
    assert [r.kind for r in trail] == ["decision", "measurement", "decision"]
    assert trail[1].data["value"] == [0.4]
    assert trail[2].data["decision"] == "aborted" and trail[2].revision == "abc"
