"""Drift detection through shared watches: one informer per kind, identity and namespace for
every managed object of the apps applied as that identity there (selected by the ApplySet
``part-of`` label), never one per object or per app. The watch runs as the identity that applied
the objects, so the agent itself needs no right to list them (docs/decisions/0012). Each change
or deletion is handed to a callback with the owning app's inventory name; the callback decides
whether it is drift (see ``tether.agent.healing``)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from tether.agent.informer import Informer
from tether.cluster.client import KubeClient, Resource
from tether.core import ObjectRef
from tether.core.inventory import APP_LABEL, PART_OF_LABEL

log = logging.getLogger("tether.agent.drift")

DriftCallback = Callable[[str, ObjectRef, dict[str, Any] | None], Awaitable[None]]


class WatchKey(NamedTuple):
    """What one informer follows: a kind, as a ServiceAccount (``namespace/name``, "" for the
    agent itself), in a namespace ("" for a cluster-scoped kind)."""

    resource: Resource
    identity: str
    namespace: str


class DriftWatcher:
    """Keeps one informer running per kind, identity and namespace that any app manages."""

    def __init__(self, client: KubeClient, on_change: DriftCallback) -> None:
        self.client = client
        self.on_change = on_change
        self._informers: dict[WatchKey, Informer] = {}
        self._tasks: dict[WatchKey, asyncio.Task[None]] = {}

    def kinds(self) -> set[Resource]:
        return {key.resource for key in self._informers}

    async def ensure(self, keys: set[WatchKey]) -> set[WatchKey]:
        """Start informers not running yet and wait until each has handled its first list (or
        ended: its kind is gone, or its identity may not list it); the keys whose informer is
        new (their objects were judged by that list)."""
        new = keys - set(self._informers)
        for key in new:
            client = self.client.impersonating(key.identity) if key.identity else self.client
            informer = Informer(
                client,
                key.resource,
                self._handler(key.resource),
                namespace=key.namespace,
                selector=PART_OF_LABEL,
                forbidden_ends=True,
            )
            self._informers[key] = informer
            task = asyncio.create_task(informer.run())
            task.add_done_callback(functools.partial(self._forget, key))
            self._tasks[key] = task
        await asyncio.gather(*(self._synced_or_gone(k) for k in keys))
        return {key for key in new if key in self._informers}

    async def _synced_or_gone(self, key: WatchKey) -> None:
        informer, task = self._informers.get(key), self._tasks.get(key)
        if informer is None or task is None:
            return
        synced = asyncio.create_task(informer.synced.wait())
        await asyncio.wait({synced, task}, return_when=asyncio.FIRST_COMPLETED)
        synced.cancel()

    def _forget(self, key: WatchKey, ended: asyncio.Task[None]) -> None:
        """An informer ended (its kind is no longer served, or its identity may not list it):
        a later ``ensure`` starts anew."""
        if self._tasks.get(key) is ended:
            del self._tasks[key]
            self._informers.pop(key, None)

    def exists(self, key: WatchKey, ref: ObjectRef) -> bool:
        """Whether the informer of ``key`` last saw ``ref`` present."""
        informer = self._informers.get(key)
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
