"""Drift detection through shared watches: one watch per kind for every managed object of every
app (selected by the ApplySet ``part-of`` label), never one per object. Each change or deletion
is handed to a callback with the owning app's inventory name; the controller decides whether it
is drift (see ``tether.core.compare.drifted_fields``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tether.cluster.client import ApiError, KubeClient, Resource
from tether.core import ObjectRef
from tether.core.inventory import APP_LABEL, PART_OF_LABEL
from tether.errors import ClusterError

log = logging.getLogger("tether.agent.drift")

DriftCallback = Callable[[str, ObjectRef, dict[str, Any] | None], Awaitable[None]]


class DriftWatcher:
    """Keeps one watch running per resource kind that any app manages."""

    def __init__(self, client: KubeClient, on_change: DriftCallback) -> None:
        self.client = client
        self.on_change = on_change
        self._watches: dict[Resource, asyncio.Task[None]] = {}
        self.ready: dict[Resource, asyncio.Event] = {}

    def kinds(self) -> set[Resource]:
        return set(self._watches)

    async def ensure(self, resources: set[Resource]) -> set[Resource]:
        """Start watches for kinds not watched yet and wait until each has its initial list;
        the kinds whose watch is new (changes made before it began were not seen)."""
        new = resources - set(self._watches)
        for resource in new:
            self.ready[resource] = asyncio.Event()
            self._watches[resource] = asyncio.create_task(self._watch(resource))
        await asyncio.gather(*(self.ready[r].wait() for r in resources))
        return new

    async def stop(self) -> None:
        for task in self._watches.values():
            task.cancel()
        await asyncio.gather(*self._watches.values(), return_exceptions=True)
        self._watches.clear()

    async def _watch(self, resource: Resource) -> None:
        version = ""
        while True:
            try:
                if not version:
                    version = await self._list_version(resource)
                    self.ready[resource].set()
                async for event in self.client.watch(resource, "", version, PART_OF_LABEL, 290):
                    version = await self._handle(resource, event) or version
            except asyncio.CancelledError:
                raise
            except ApiError as error:
                if error.status == 410:
                    version = ""  # too old: list again
                    continue
                log.warning("watch of %s failed: %s", resource.kind, error)
                await asyncio.sleep(1)
            except (ClusterError, OSError, ValueError) as error:
                log.warning("watch of %s broke: %s", resource.kind, error)
                await asyncio.sleep(1)

    async def _list_version(self, resource: Resource) -> str:
        data = await self.client.request(
            "GET",
            resource.path(),
            what=f"{resource.kind} list",
            params={"labelSelector": PART_OF_LABEL, "limit": "1"},
        )
        return str((data.get("metadata") or {}).get("resourceVersion", ""))

    async def _handle(self, resource: Resource, event: dict[str, Any]) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind == "ERROR":
            status = int(obj.get("code", 0))
            raise ApiError(
                f"{resource.kind} watch: {obj.get('message', '')}", status, obj.get("reason", "")
            )
        if kind not in ("MODIFIED", "DELETED"):
            return version
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
        app = ((obj.get("metadata") or {}).get("labels") or {}).get(APP_LABEL)
        if app:
            try:
                await self.on_change(app, ObjectRef.of(obj), None if kind == "DELETED" else obj)
            except Exception:  # a bug in one handler must not stop the watch of a whole kind
                log.exception("drift handler failed for %s", ObjectRef.of(obj))
        return version
