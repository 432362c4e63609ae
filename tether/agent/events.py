"""Kubernetes Events about an App, as ``kubectl describe`` and ``tether events`` show them."""

from __future__ import annotations

import logging

from tether.agent import crds
from tether.agent.conditions import now
from tether.agent.specs import AppSpec
from tether.cluster.client import KubeClient
from tether.errors import ClusterError

log = logging.getLogger("tether.agent.events")


class EventRecorder:
    """Writes one Event per call; a failure to record is logged, never raised."""

    def __init__(self, client: KubeClient, identity: str) -> None:
        self.client = client
        self.identity = identity

    async def record(self, spec: AppSpec, kind: str, reason: str, message: str) -> None:
        """``kind`` is ``Normal`` or ``Warning``."""
        stamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{spec.name}.", "namespace": spec.namespace},
            "involvedObject": {
                "apiVersion": crds.API_VERSION,
                "kind": "App",
                "name": spec.name,
                "namespace": spec.namespace,
            },
            "reason": reason,
            "message": message[:1000],
            "type": kind,
            "source": {"component": "tether-agent"},
            "reportingComponent": "tether-agent",
            "reportingInstance": self.identity,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self.client.create(await self.client.resource("v1", "Event"), event)
        except ClusterError as error:
            log.warning("could not record event %s for %s: %s", reason, spec.key, error)
