"""Resolving audit URLs and naming them safely; who ran a sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.audit import default_actor, default_path, masked
from tether.audit.url import resolve


def test_postgres_urls_use_psycopg() -> None:
    for scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        target = resolve(f"{scheme}://tether:s3cret@db:5432/tether")
        assert target.url.drivername == "postgresql+psycopg"
        assert target.url.password == "s3cret"
        assert target.display == f"{scheme}://tether:***@db:5432/tether"
        assert not target.is_sqlite


def test_plain_paths_and_sqlite_urls_are_sqlite_files(tmp_path: Path) -> None:
    for url in (str(tmp_path / "a.db"), f"sqlite:///{tmp_path}/a.db"):
        target = resolve(url)
        assert target.is_sqlite
        assert target.sqlite_path == tmp_path / "a.db"
        assert target.display == str(tmp_path / "a.db")


def test_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve("~/audit.db").sqlite_path == tmp_path / "audit.db"


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TETHER_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert default_path() == tmp_path / ".local" / "state" / "tether" / "audit.db"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "tether" / "audit.db"
    monkeypatch.setenv("TETHER_STATE_DIR", str(tmp_path / "tether-state"))
    assert default_path() == tmp_path / "tether-state" / "audit.db"
    assert resolve(None).sqlite_path == tmp_path / "tether-state" / "audit.db"


def test_masking_handles_encoded_and_unparseable_passwords() -> None:
    assert masked("postgresql://u:p%40ss%2Fword@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert masked("postgresql://u:secret@h:port/d") == "postgresql://u:***@h:port/d"
    assert masked("sqlite:////var/lib/tether/audit.db") == "sqlite:////var/lib/tether/audit.db"


def test_scrub_removes_raw_and_encoded_password() -> None:
    target = resolve("postgresql://u:p%40ss%2Fword@h:5432/d")
    said = target.scrub("failed for p@ss/word and p%40ss%2Fword")
    assert said == "failed for *** and ***"


def test_default_actor_is_user_at_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setattr("socket.gethostname", lambda: "laptop")
    assert default_actor() == "alice@laptop"
