"""The agent's composition root: it builds the parts of one replica and runs them while this
replica leads. Each concern has its own module:

- ``informer``: list and watch one kind (re-list on 410, forget what is gone);
- ``sources``: GitSource workers (fetch, credentials, signatures); ``helmsources``:
  HelmSource workers (charts resolved per App); ``ocisources``: OCISource workers;
  ``intervalworkers``: the worker loop the three share; ``appsources``: what an App syncs;
- ``apps``: App workers (the reconcile pass, dependencies, health wait);
- ``drift`` and ``healing``: shared watches of managed objects, and judging their changes;
- ``tenancy``: an App's Project as sync options;
- ``status``, ``events``, ``alerts``: what the agent tells (status, Events, queued alerts);
- ``leader``: the Lease; ``server`` and ``webhooks``: HTTP endpoints.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tether.agent import crds, metrics
from tether.agent.alerts import AlertQueue
from tether.agent.apps import AppWorkers
from tether.agent.appsources import AppSources
from tether.agent.drift import DriftWatcher
from tether.agent.events import EventRecorder
from tether.agent.healing import DriftJudge
from tether.agent.helmsources import HelmSourceWorkers
from tether.agent.informer import Informer
from tether.agent.ocisources import OCISourceWorkers
from tether.agent.settings import AgentSettings
from tether.agent.sources import SourceWorkers
from tether.agent.state import Fleet
from tether.agent.status import StatusWriter
from tether.audit import AuditStore
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection
from tether.errors import ClusterError

log = logging.getLogger("tether.agent")
# Requests in flight at once for syncs, status and events (watches use their own pool).
REQUEST_CONCURRENCY = 8


class Agent:
    """One replica's parts. ``lead`` runs them until cancelled (when leadership is lost)."""

    def __init__(self, connection: Connection, settings: AgentSettings) -> None:
        self.connection = connection
        self.settings = settings
        self.client = KubeClient(connection, concurrency=REQUEST_CONCURRENCY)
        self.fleet = Fleet()
        self.audit = AuditStore(settings.audit_url)
        self.alerts = AlertQueue(self.client, settings.alert_queue)
        status = StatusWriter(self.client)
        events = EventRecorder(self.client, settings.identity)
        self.judge = DriftJudge(self.fleet, status, events, self.alerts)
        self.drift = DriftWatcher(self.client, self.judge.on_change)
        self.sources = SourceWorkers(self.client, self.fleet, status, self.alerts, settings)
        self.helm_sources = HelmSourceWorkers(
            self.client, self.fleet, status, self.alerts, settings, self.sources.slots
        )
        self.oci_sources = OCISourceWorkers(
            self.client, self.fleet, status, self.alerts, settings, self.sources.slots
        )
        self.apps = AppWorkers(
            connection=connection,
            client=self.client,
            settings=settings,
            fleet=self.fleet,
            sources=self.sources,
            app_sources=AppSources(self.fleet, self.sources, self.helm_sources),
            drift=self.drift,
            status=status,
            events=events,
            alerts=self.alerts,
            audit=self.audit,
        )

    async def lead(self) -> None:
        """What the leader does: follow GitSources and Apps, deliver alerts, until cancelled."""
        metrics.IS_LEADER.set(1)
        namespace = self.settings.namespace
        sources = Informer(
            self.client,
            await self.client.resource(crds.API_VERSION, "GitSource"),
            self.sources.on_event,
            namespace=namespace,
        )
        helm_sources = await self._informer_if_installed("HelmSource", self.helm_sources.on_event)
        oci_sources = await self._informer_if_installed("OCISource", self.oci_sources.on_event)
        apps = Informer(
            self.client,
            await self.client.resource(crds.API_VERSION, "App"),
            self.apps.on_event,
            namespace=namespace,
        )
        providers = Informer(
            self.client,
            await self.client.resource(crds.API_VERSION, "AlertProvider"),
            self.alerts.on_provider,
            namespace=namespace,
        )
        try:
            await asyncio.gather(
                sources.run(),
                *(informer.run() for informer in (helm_sources, oci_sources) if informer),
                apps.run(),
                providers.run(),
                self._when_listed(providers),
                self.alerts.run(),
            )
        finally:
            metrics.IS_LEADER.set(0)
            await self._stop_workers()

    async def _informer_if_installed(
        self, kind: str, handler: Callable[[str, dict[str, Any]], Awaitable[None]]
    ) -> Informer | None:
        """An informer of ``kind``, or None (logged) when the cluster's CRDs predate it: an
        agent upgraded before `tether install` was run again keeps serving the other kinds."""
        try:
            resource = await self.client.resource(crds.API_VERSION, kind)
        except ClusterError:
            log.warning("%s is not installed: run `tether install` to update the CRDs", kind)
            return None
        return Informer(self.client, resource, handler, namespace=self.settings.namespace)

    async def _when_listed(self, providers: Informer) -> None:
        """Alerts wait for the first list of AlertProviders, so none is sent to nobody."""
        await providers.synced.wait()
        self.alerts.providers_listed.set()

    async def _stop_workers(self) -> None:
        tasks = [
            *(a.task for a in self.fleet.apps.values() if a.task),
            *(s.task for s in self.fleet.sources.values() if s.task),
            *(h.task for h in self.fleet.helm_sources.values() if h.task),
            *(o.task for o in self.fleet.oci_sources.values() if o.task),
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.drift.stop()
        self.apps.delivery.stop()  # another replica may move the rollouts now
        self.fleet.clear()

    async def close(self) -> None:
        await self.client.close()
        self.audit.close()
