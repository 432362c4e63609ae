"""Analysis fixtures: one real Prometheus per test session, scraping a target the tests move."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.analysis.prom import Prometheus, Target, prometheus_binary


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    served = Target()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory, target: Target) -> Iterator[Prometheus]:
    server = Prometheus(
        prometheus_binary(), tmp_path_factory.mktemp("prometheus"), target.address
    ).start()
    try:
        yield server
    finally:
        server.stop()
