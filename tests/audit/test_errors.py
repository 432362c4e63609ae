"""Failures name the database with its password masked, say what to check, and never leak it."""

from __future__ import annotations

import socket
import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa

from tether.audit import AuditStore
from tether.audit.schema import TABLE_NAME
from tether.errors import AuditError

from .records import sync

WRONG_PASSWORD = "n0t-the-Right-p4ssword"


def _everything_said(error: BaseException) -> str:
    """The error's message plus its whole traceback and chain, as a user or a log would see it."""
    return str(error) + "".join(traceback.format_exception(error))


def _password(url: str) -> str:
    return str(sa.make_url(url).password)


def test_bad_postgres_password_is_an_audit_error_without_the_password(postgres_url: str) -> None:
    real = _password(postgres_url)
    bad_url = postgres_url.replace(f":{real}@", f":{WRONG_PASSWORD}@")

    with pytest.raises(AuditError) as caught:
        AuditStore(bad_url)

    said = _everything_said(caught.value)
    assert WRONG_PASSWORD not in said
    assert real not in said
    host_port = postgres_url.split("@")[1]
    assert f"postgresql://tether:***@{host_port}" in str(caught.value)
    assert "password authentication failed" in str(caught.value)
    assert "check that" in str(caught.value)


def test_unreachable_postgres_names_the_masked_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens once the probe is closed.
    url = f"postgresql://tether:{WRONG_PASSWORD}@127.0.0.1:{port}/tether"

    with pytest.raises(AuditError) as caught:
        AuditStore(url)

    message = str(caught.value)
    assert f"postgresql://tether:***@127.0.0.1:{port}/tether" in message
    assert "running and reachable" in message
    assert WRONG_PASSWORD not in _everything_said(caught.value)


def test_write_failure_is_an_audit_error_naming_the_app(audit_url: str) -> None:
    store = AuditStore(audit_url)
    try:
        engine = sa.create_engine(audit_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE {TABLE_NAME}")
        engine.dispose()

        with pytest.raises(AuditError, match="could not record the sync of app 'shop'") as caught:
            store.record(sync())
        with pytest.raises(AuditError, match="could not read the history of app 'shop'"):
            store.history("shop")
    finally:
        store.close()
    if audit_url.startswith("postgresql://"):
        assert _password(audit_url) not in _everything_said(caught.value)
        assert ":***@" in str(caught.value)


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    path = blocker / "audit.db"

    with pytest.raises(AuditError) as caught:
        AuditStore(str(path))

    assert str(path) in str(caught.value)
    assert "directory is writable" in str(caught.value)


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 100)

    with pytest.raises(AuditError, match="could not be opened") as caught:
        AuditStore(str(path))

    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://tether:{WRONG_PASSWORD}@db.example.com/tether",
        f"postgresql://tether:{WRONG_PASSWORD}@db.example.com:not-a-port/tether",
    ],
)
def test_unusable_urls_are_audit_errors_without_the_password(url: str) -> None:
    with pytest.raises(AuditError) as caught:
        AuditStore(url)
    assert WRONG_PASSWORD not in _everything_said(caught.value)
    assert "tether:***@db.example.com" in str(caught.value)
