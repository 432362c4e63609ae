"""Drift detection through shared watches: one informer per kind for every managed object of
every app (selected by the ApplySet ``part-of`` label), never one per object or per app. Each
change or deletion is handed to a callback with the owning app's inventory name; the callback
decides whether it is drift (see ``tether.agent.healing``)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tether.agent.informer import Informer
from tether.cluster.client import KubeClient, Resource
from tether.core import ObjectRef
from tether.core.inventory import APP_LABEL, PART_OF_LABEL

log = logging.getLogger("tether.agent.drift")

DriftCallback = Callable[[str, ObjectRef, dict[str, Any] | None], Awaitable[None]]


class DriftWatcher:
    """Keeps one informer running per resource kind that any app manages."""

    def __init__(self, client: KubeClient, on_change: DriftCallback) -> None:
        self.client = client
        self.on_change = on_change
        self._informers: dict[Resource, Informer] = {}
        self._tasks: dict[Resource, asyncio.Task[None]] = {}

    def kinds(self) -> set[Resource]:
        return set(self._informers)

    async def ensure(self, resources: set[Resource]) -> set[Resource]:
        """Start informers for kinds not watched yet and wait until each has handled its first
        list; the kinds whose informer is new (their objects were judged by that list)."""
        new = resources - set(self._informers)
        for resource in new:
            informer = Informer(
                self.client, resource, self._handler(resource), selector=PART_OF_LABEL
            )
            self._informers[resource] = informer
            task = asyncio.create_task(informer.run())
            task.add_done_callback(functools.partial(self._forget, resource))
            self._tasks[resource] = task
        await asyncio.gather(*(self._synced_or_gone(r) for r in resources))
        return new

    async def _synced_or_gone(self, resource: Resource) -> None:
        informer, task = self._informers.get(resource), self._tasks.get(resource)
        if informer is None or task is None:
            return
        synced = asyncio.create_task(informer.synced.wait())
        await asyncio.wait({synced, task}, return_when=asyncio.FIRST_COMPLETED)
        synced.cancel()

    def _forget(self, resource: Resource, ended: asyncio.Task[None]) -> None:
        """An informer ended (its kind is no longer served): a later ``ensure`` starts anew."""
        if self._tasks.get(resource) is ended:
            del self._tasks[resource]
            self._informers.pop(resource, None)

    def exists(self, resource: Resource, ref: ObjectRef) -> bool:
        """Whether the informer of ``resource`` last saw ``ref`` present."""
        informer = self._informers.get(resource)
        return informer is not None and (ref.namespace, ref.name) in informer.known

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._informers.clear()

    def _handler(self, resource: Resource) -> Callable[[str, dict[str, Any]], Awaitable[None]]:
        async def handle(kind: str, obj: dict[str, Any]) -> None:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            app = labels.get(APP_LABEL)
            if app:
                await self.on_change(app, ObjectRef.of(obj), None if kind == "DELETED" else obj)

        return handle
