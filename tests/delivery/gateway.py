"""The tests' stand-in for a Gateway API controller: it accepts the HTTPRoutes of a namespace.

The dev cluster runs no gateway controller, so an ``HTTPRoute`` never gets ``status.parents``
and Tether's health rule (tether/health/rules/gateway-api.yaml) rightly keeps it Progressing,
then Degraded. A real controller writes, for each parent Gateway it handles, ``Accepted`` and
``ResolvedRefs`` conditions at the route's current generation. ``GatewayController`` does that
(through the status subresource, as a controller would) for every route of the namespace whose
parentRefs name a Gateway, each time a route's generation moves: health is not made to lie,
the routes really carry what a controller would have written.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Kubectl

CONTROLLER_NAME = "tests.tether.dev/gateway-controller"
GATEWAY_GROUP = "gateway.networking.k8s.io"


def gateway_parents(route: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The parentRefs of ``route`` that name a Gateway (the default kind and group)."""
    refs = (route.get("spec") or {}).get("parentRefs") or []
    return [
        dict(ref)
        for ref in refs
        if ref.get("kind", "Gateway") == "Gateway"
        and ref.get("group", GATEWAY_GROUP) == GATEWAY_GROUP
    ]


def accepted_status(route: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The ``status`` a controller handling every Gateway parent of ``route`` writes."""
    generation = int((route.get("metadata") or {}).get("generation") or 1)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def condition(kind: str, reason: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": "accepted by the tests' gateway controller",
            "observedGeneration": generation,
            "lastTransitionTime": stamp,
        }

    return {
        "parents": [
            {
                "parentRef": ref,
                "controllerName": CONTROLLER_NAME,
                "conditions": [
                    condition("Accepted", "Accepted"),
                    condition("ResolvedRefs", "ResolvedRefs"),
                ],
            }
            for ref in gateway_parents(route)
        ]
    }


def needs_status(route: Mapping[str, Any]) -> bool:
    """True when ``route`` names a Gateway and its status is not at its current generation."""
    if not gateway_parents(route):
        return False
    generation = int((route.get("metadata") or {}).get("generation") or 1)
    parents = (route.get("status") or {}).get("parents") or []
    seen = [
        int(c.get("observedGeneration") or 0)
        for p in parents
        if p.get("controllerName") == CONTROLLER_NAME
        for c in p.get("conditions") or []
    ]
    return not seen or min(seen) < generation


class GatewayController:
    """Accepts the namespace's routes every ``period`` seconds, in a thread, until stopped."""

    def __init__(self, kubectl: Kubectl, namespace: str, period: float = 0.5) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.period = period
        self.accepted = 0  # status writes made (a test can see the controller worked)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-controller", daemon=True)

    def start(self) -> GatewayController:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.reconcile()
            except subprocess.CalledProcessError:  # a route deleted meanwhile: next round
                continue

    def reconcile(self) -> None:
        """One round: write the status of each route that needs it."""
        listed = json.loads(
            self.kubectl("get", "httproutes", "-n", self.namespace, "-o", "json").stdout
        )
        for route in listed.get("items") or []:
            if needs_status(route):
                self._accept(route)

    def _accept(self, route: Mapping[str, Any]) -> None:
        name = str(route["metadata"]["name"])
        patch = {"status": accepted_status(route, datetime.now(UTC))}
        self.kubectl(
            "patch",
            "httproute",
            name,
            "-n",
            self.namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(patch),
        )
        self.accepted += 1


def running(kubectl: Kubectl, namespace: str) -> Iterator[GatewayController]:
    """A ``GatewayController`` for ``namespace`` for the span of a fixture."""
    controller = GatewayController(kubectl, namespace).start()
    try:
        yield controller
    finally:
        controller.stop()
