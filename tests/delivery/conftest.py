"""Delivery fixtures: the signals a rollout is judged by, and Gateway API in the dev cluster.

- ``metrics_app``: the service's per-version request and error counters (``signals.MetricsApp``),
  one per test session; tests use versions of their own (``signals.new_version``).
- ``prometheus``: a real Prometheus (Debian's binary) scraping ``metrics_app`` every second.
- ``gateway_api``: the Gateway API standard CRDs (from the Go module ``sigs.k8s.io/gateway-api``
  at the version pinned in ``tether/devcluster/versions.py``) installed in the dev cluster.

Pods of a bad version: the dev cluster's kwok Stages keep pods whose image tag ends in
``-unready`` running and never Ready (``signals.unready_image``).

Other delivery helpers add their fixtures in their own test files or at the end of this file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.analysis.prom import Prometheus, prometheus_binary
from tests.conftest import Kubectl
from tests.delivery.signals import MetricsApp
from tether.devcluster.provision import gateway_api_crds

GATEWAY_API_KINDS = ("HTTPRoute", "Gateway", "GatewayClass", "ReferenceGrant")


@pytest.fixture(scope="session")
def metrics_app() -> Iterator[MetricsApp]:
    app = MetricsApp()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, metrics_app: MetricsApp
) -> Iterator[Prometheus]:
    server = Prometheus(
        prometheus_binary(), tmp_path_factory.mktemp("prometheus"), metrics_app.address
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gateway_api(kubectl: Kubectl) -> None:
    """Gateway API's CRDs, applied server-side (they are too large for client-side apply's
    last-applied annotation) and waited for until the API server serves them."""
    kubectl("apply", "--server-side", "--field-manager=tests", "-f", str(gateway_api_crds()))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=120s",
        "crd/httproutes.gateway.networking.k8s.io",
        "crd/gateways.gateway.networking.k8s.io",
        "crd/gatewayclasses.gateway.networking.k8s.io",
        "crd/referencegrants.gateway.networking.k8s.io",
    )


# The agent run as a process (tests/agent/conftest.py), for the delivery tests that drive
# rollouts through it (test_canary_agent.py).
from tests.agent.conftest import start_agent, tether_crds  # noqa: E402

__all__ = ["gateway_api", "metrics_app", "prometheus", "start_agent", "tether_crds"]
