"""What a delivery test watches a version through: its metrics, and whether its pods are Ready.

:class:`MetricsApp` stands for the service under delivery as its metrics show it. It is a loopback
HTTP server (prometheus_client's own, in a thread of the test process) with a private registry
holding ``web_requests_total`` and ``web_errors_total`` labelled by ``version``. For each version
the test names, a background ticker adds :attr:`MetricsApp.requests_per_tick` requests every
:data:`TICK` seconds, and a share of them fails at the error rate the test sets, counted exactly
(never drawn at random), so a rate over any window gives the error rate the test asked for.

Readiness comes from the dev cluster's kwok Stages (``tether.devcluster.stages``): a pod whose
image tag ends in ``-unready`` runs and never becomes Ready; :func:`unready_image` names one.

The real Prometheus scraping the app is ``tests.analysis.prom.Prometheus`` (Debian's binary).
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.notify.receivers import free_port
from tether.devcluster.stages import DEFAULT_UNREADY_IMAGE_TAGS

TICK = 0.1
"""Seconds between two batches of requests."""


def unready_image(repository: str, version: str) -> str:
    """An image whose pods the dev cluster keeps running but never Ready (a bad version)."""
    return f"{repository}:{version}-{DEFAULT_UNREADY_IMAGE_TAGS[0]}"


def new_version() -> str:
    """A version label no other test uses (tests share one Prometheus)."""
    return f"v-{uuid.uuid4().hex[:8]}"


@dataclass
class _Traffic:
    error_rate: float
    requests: int = 0
    errors: int = 0
    owed: float = 0.0  # the fraction of a failed request carried to the next tick


class MetricsApp:
    """Per-version request and error counters that move on their own at the rates a test sets."""

    def __init__(self, requests_per_tick: int = 10) -> None:
        self.requests_per_tick = requests_per_tick
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "web_requests", "Requests served, by version", ["version"], registry=self.registry
        )
        self._errors = Counter(
            "web_errors", "Requests that failed, by version", ["version"], registry=self.registry
        )
        self._traffic: dict[str, _Traffic] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.port = free_port()
        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self._ticker = threading.Thread(target=self._tick_until_stopped, daemon=True)
        self._ticker.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serve(self, version: str, error_rate: float = 0.0) -> None:
        """From now on ``version`` receives traffic, ``error_rate`` of it failing (0 to 1)."""
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"an error rate is between 0 and 1, not {error_rate}")
        with self._lock:
            current = self._traffic.get(version)
            if current is None:
                self._errors.labels(version).inc(0)  # the series exists from the start, at zero
                self._traffic[version] = _Traffic(error_rate)
            else:
                current.error_rate = error_rate

    def retire(self, version: str) -> None:
        """``version`` receives no more traffic (its counters stay where they are)."""
        with self._lock:
            self._traffic.pop(version, None)

    def counts(self, version: str) -> tuple[int, int]:
        """(requests, errors) served so far by ``version``, as the app counted them."""
        with self._lock:
            traffic = self._traffic.get(version)
            return (traffic.requests, traffic.errors) if traffic else (0, 0)

    def stop(self) -> None:
        self._stopped.set()
        self._ticker.join(timeout=5)
        self._server.shutdown()
        self._server.server_close()

    def _tick_until_stopped(self) -> None:
        while not self._stopped.wait(TICK):
            with self._lock:
                for version, traffic in self._traffic.items():
                    self._add(version, traffic)

    def _add(self, version: str, traffic: _Traffic) -> None:
        traffic.requests += self.requests_per_tick
        traffic.owed += self.requests_per_tick * traffic.error_rate
        due = math.floor(traffic.owed + 1e-9)
        traffic.owed -= due
        self._requests.labels(version).inc(self.requests_per_tick)
        if due > 0:
            traffic.errors += due
            self._errors.labels(version).inc(due)


def error_ratio(version: str, window: str = "20s") -> str:
    """PromQL: the share of ``version``'s requests that failed over the last ``window``."""
    return (
        f'sum(rate(web_errors_total{{version="{version}"}}[{window}])) '
        f'/ sum(rate(web_requests_total{{version="{version}"}}[{window}]))'
    )
