"""A real Prometheus for the analysis tests, and the target it scrapes.

:class:`Target` is an HTTP server on 127.0.0.1 (prometheus_client's own, in a thread of the test
process) exposing a private registry with two counters labelled by ``version``:
``shop_requests_total`` and ``shop_errors_total``. Tests move them as a service under a canary
would, each test with versions of its own so tests never read each other's series.

:class:`Prometheus` runs Debian's ``prometheus`` binary on a free loopback port with a temporary
config (one scrape job, that target, every second) and a temporary TSDB path. When the binary is
missing the tests fail, never skip: ``scripts/setup`` installs the package.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.notify.receivers import free_port

PROMETHEUS_HINT = (
    "the analysis tests need a real Prometheus, but `prometheus` is not on PATH: scripts/setup "
    "installs Debian's package (`apt-get install -y prometheus`, binary /usr/bin/prometheus)"
)
SCRAPE_INTERVAL = "1s"
_START_TIMEOUT = 60.0


class Target:
    """The scraped service: request and error counters per version, moved by the tests."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shop_requests", "Requests served", ["version"], registry=self.registry
        )
        self.errors = Counter(
            "shop_errors", "Requests that failed", ["version"], registry=self.registry
        )
        self.port = free_port()
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def new_version(self) -> str:
        """A version label no other test uses."""
        return f"v-{uuid.uuid4().hex[:8]}"

    def serve(self, version: str, requests: int, errors: int = 0) -> None:
        self.requests.labels(version).inc(requests)
        if errors:
            self.errors.labels(version).inc(errors)
        else:
            self.errors.labels(version).inc(0)  # the series exists, at zero

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def success_rate(version: str) -> str:
    """The share of requests that did not fail, over the counters' whole life."""
    return (
        f'1 - sum(shop_errors_total{{version="{version}"}}) '
        f'/ sum(shop_requests_total{{version="{version}"}})'
    )


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        pytest.fail(PROMETHEUS_HINT, pytrace=False)
    return found


@dataclass
class Prometheus:
    """A running Prometheus scraping ``target``; ``url`` is its base URL."""

    binary: str
    directory: Path
    target: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.directory / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, attempts: int = 3) -> Prometheus:
        config = self.directory / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}\n"
            f"  evaluation_interval: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n"
            "  - job_name: shop\n"
            "    static_configs:\n"
            f"      - targets: ['{self.target}']\n"
        )
        for _ in range(attempts):  # another process may take the free port first
            self.port = free_port()
            with (self.directory / "prometheus.log").open("wb") as log:
                self.process = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.directory / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--storage.tsdb.retention.time=1h",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready():
                return self
            self.stop()
        raise AssertionError(f"Prometheus did not become ready:\n{self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def query(self, promql: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def wait_for(self, promql: str, expected: float, attempts: int = 240) -> None:
        """Wait until ``promql`` gives ``expected`` (the scrape has seen what the test did)."""
        last: Any = None
        for _ in range(attempts):
            last = self.query(promql)
            if last and abs(float(last[0]["value"][1]) - expected) < 1e-9:
                return
            time.sleep(0.25)
        raise AssertionError(f"{promql} never gave {expected}; last answer {last}\n{self.log}")

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False
