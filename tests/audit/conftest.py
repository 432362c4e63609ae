"""Audit test fixtures: one empty database per test and backend (SQLite file, real PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import fresh_database

_database_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty audit database: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    server_url = request.getfixturevalue("postgres_url")
    with fresh_database(server_url, f"audit_test_{next(_database_numbers)}") as url:
        yield url
