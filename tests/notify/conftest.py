"""Alert test fixtures: a recording HTTP server per test, one real Alertmanager per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.notify.receivers import Alertmanager, Recorder, alertmanager_binary


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    directory: Path = tmp_path_factory.mktemp("alertmanager")
    server = Alertmanager(alertmanager_binary(), directory).start()
    try:
        yield server
    finally:
        server.stop()
