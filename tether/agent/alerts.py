"""Alerts leave the agent through a bounded queue drained by one background sender, so a
receiver that is down or slow (and the notifier's retries) never delays drift handling or a sync.
When the queue is full the alert is dropped and counted in ``tether_alerts_dropped_total``.
AlertProviders are followed by an informer (``on_provider``), not listed for every alert."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tether.agent import metrics
from tether.agent.secretdata import read_secret
from tether.cluster.client import KubeClient
from tether.errors import ClusterError
from tether.notify import Alert, AlertEvent, Notifier, ProviderSpec

log = logging.getLogger("tether.agent.alerts")


class AlertQueue:
    """``put`` never waits; ``run`` delivers queued alerts in order, one at a time."""

    def __init__(self, client: KubeClient, size: int) -> None:
        self.client = client
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=size)
        # namespace → name → AlertProvider, as the informer last saw them
        self._known: dict[str, dict[str, dict[str, Any]]] = {}
        self.providers_listed = asyncio.Event()  # set by the owner once the informer has listed

    async def on_provider(self, event: str, obj: dict[str, Any]) -> None:
        """The AlertProvider informer's callback."""
        metadata = obj["metadata"]
        namespace = self._known.setdefault(metadata.get("namespace", ""), {})
        if event == "DELETED":
            namespace.pop(metadata["name"], None)
        else:
            namespace[metadata["name"]] = obj

    def put(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            metrics.ALERTS_DROPPED.inc()
            log.warning(
                "alert queue full: dropped %s for %s/%s", alert.event, alert.namespace, alert.app
            )

    async def run(self) -> None:
        """Forever (until cancelled): deliver the next alert to the providers of its namespace."""
        await self.providers_listed.wait()
        while True:
            alert = await self._queue.get()
            try:
                await self._deliver(alert)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad provider must not stop every later alert
                log.exception("alert %s for %s could not be delivered", alert.event, alert.app)
            finally:
                self._queue.task_done()

    async def _deliver(self, alert: Alert) -> None:
        try:
            providers = await self._providers(alert.namespace)
        except ClusterError as error:
            log.warning("alert %s: cannot read AlertProviders: %s", alert.event, error)
            return
        if not providers:
            return
        notifier = Notifier(providers)
        try:
            for result in await notifier.send(alert):
                if not result.ok:
                    metrics.ALERTS_FAILED.inc()
                    log.warning(
                        "alert %s to %s failed: %s", alert.event, result.provider, result.error
                    )
        finally:
            await notifier.aclose()

    async def _providers(self, namespace: str) -> list[ProviderSpec]:
        specs = []
        for item in list(self._known.get(namespace, {}).values()):
            spec = item.get("spec") or {}
            secret = await read_secret(
                self.client, namespace, (spec.get("secretRef") or {}).get("name", "")
            )
            specs.append(
                ProviderSpec(
                    name=item["metadata"]["name"],
                    type=spec["type"],
                    url=secret.get("url", "") or spec.get("url", ""),
                    hmac_key=secret["hmacKey"].encode() if secret.get("hmacKey") else None,
                    events=frozenset(
                        AlertEvent(e) for e in spec.get("events") or [e.value for e in AlertEvent]
                    ),
                )
            )
        return specs
