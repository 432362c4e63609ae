"""Cluster fixtures of the health tests: CRDs of their own, and the agent's fixtures."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.agent.conftest import start_agent  # noqa: F401  (a fixture)
from tests.conftest import Kubectl
from tether.agent import crds

GROUP = "health-test.tether.dev"


def _crd(plural: str, kind: str, group: str) -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


@pytest.fixture(scope="session")
def tether_crds(kubectl: Kubectl) -> None:
    """The agent's CRDs, for ``start_agent``. When tests/agent ran first in the session, they
    are there already, some fields owned by another manager: take them over."""
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(crds.ALL),
    )
    kubectl("wait", "--for=condition=Established", "crd/apps.tether.dev", "--timeout=60s")


@pytest.fixture(scope="session")
def test_crds(kubectl: Kubectl) -> None:
    """Gadget (a kind of the tests' own, no controller) and cert-manager's Certificate without
    cert-manager: a kind the rule library knows, whose controller is not there."""
    crds = [
        _crd("gadgets", "Gadget", GROUP),
        _crd("certificates", "Certificate", "cert-manager.io"),
    ]
    kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds))
    kubectl(
        "wait",
        "--for=condition=Established",
        f"crd/gadgets.{GROUP}",
        "crd/certificates.cert-manager.io",
        "--timeout=60s",
    )
