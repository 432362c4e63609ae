"""List, then watch, one kind of object: the agent's only way of following the cluster.

An ``Informer`` lists (paginated), then watches from the list's resourceVersion with bookmarks
and a server-side timeout, resuming from the last version it saw each time the server ends the
stream. A ``410 Gone`` (the version is too old) or an ``ERROR`` event makes it list again; a
re-list reports as deleted every object that vanished while it was not watching, so nothing gone
is remembered. Watches run on the client's separate watch pool and never take connections that
requests need (see docs/decisions/0009-connections-and-leadership.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from tether.cluster.client import ApiError, KubeClient, Resource
from tether.errors import ClusterError

log = logging.getLogger("tether.agent.informer")

EventHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
# Server-side watch timeout: between 4 and 5 minutes, spread so that many watches do not all
# re-connect together (client-go spreads them the same way).
WATCH_TIMEOUT_MIN = 240
WATCH_TIMEOUT_MAX = 300
RETRY_MAX = 10.0
_FORBIDDEN = 403


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def _identity(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    kept = ("namespace", "name", "resourceVersion", "labels", "uid")
    return {k: metadata[k] for k in kept if k in metadata}


class Informer:
    """Follows every object of ``resource`` (in ``namespace``, or all) matching ``selector``,
    calling ``handle(event_type, object)`` with ``ADDED``, ``MODIFIED`` or ``DELETED``."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        handle: EventHandler,
        *,
        namespace: str = "",
        selector: str = "",
        forbidden_ends: bool = False,
    ) -> None:
        """``forbidden_ends``: a 403 (the client's identity may not list or watch the kind)
        ends the informer instead of being retried."""
        self.client = client
        self.forbidden_ends = forbidden_ends
        self.resource = resource
        self.handle = handle
        self.namespace = namespace
        self.selector = selector
        self.synced = asyncio.Event()  # set once the first list has been handled
        # (namespace, name) → the object's identifying metadata as last seen (no managedFields)
        self.known: dict[tuple[str, str], dict[str, Any]] = {}
        self.lists = 0  # how many times it listed (the first list included)

    async def run(self) -> None:
        """Until cancelled, or until the kind is no longer served (404): list, watch, resume,
        re-list on 410."""
        version, failures = "", 0
        while True:
            try:
                if not version:
                    version = await self._relist()
                timeout = random.randint(WATCH_TIMEOUT_MIN, WATCH_TIMEOUT_MAX)  # noqa: S311
                async for event in self.client.watch(
                    self.resource, self.namespace, version, self.selector, timeout
                ):
                    version = await self._on_event(event) or version
                    failures = 0
            except asyncio.CancelledError:
                raise
            except ApiError as error:
                if error.status == 410:
                    log.info("watch of %s expired; listing again", self.resource.kind)
                    version = ""
                    continue
                if error.status == 404:
                    log.info(
                        "%s is no longer served (its CRD is gone): watch ended", self.resource.kind
                    )
                    return
                if error.status == _FORBIDDEN and self.forbidden_ends:
                    log.warning("watch of %s refused: not watched: %s", self.resource.kind, error)
                    return
                failures += 1
                log.warning("watch of %s failed: %s", self.resource.kind, error)
                await asyncio.sleep(min(RETRY_MAX, 0.5 * 2**failures))
            except (ClusterError, OSError, ValueError) as error:
                failures += 1
                log.warning("watch of %s broke: %s", self.resource.kind, error)
                await asyncio.sleep(min(RETRY_MAX, 0.5 * 2**failures))

    async def _relist(self) -> str:
        items, version = await self.client.list_with_version(
            self.resource, self.namespace, self.selector
        )
        self.lists += 1
        present = {_key(item): item for item in items}
        for key in set(self.known) - set(present):
            gone = {
                "apiVersion": self.resource.api_version,
                "kind": self.resource.kind,
                "metadata": self.known.pop(key),
            }
            await self._deliver("DELETED", gone)
        for key, item in present.items():
            event = "MODIFIED" if key in self.known else "ADDED"
            self.known[key] = _identity(item)
            await self._deliver(event, item)
        self.synced.set()
        return version

    async def _on_event(self, event: dict[str, Any]) -> str:
        kind, obj = str(event.get("type", "")), event.get("object") or {}
        if kind == "ERROR":
            raise ApiError(
                f"{self.resource.kind} watch: {obj.get('message', '')}",
                int(obj.get("code", 0)),
                str(obj.get("reason", "")),
            )
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return version  # BOOKMARK: only the version moves on
        obj.setdefault("apiVersion", self.resource.api_version)
        obj.setdefault("kind", self.resource.kind)
        if kind == "DELETED":
            self.known.pop(_key(obj), None)
        else:
            self.known[_key(obj)] = _identity(obj)
        await self._deliver(kind, obj)
        return version

    async def _deliver(self, kind: str, obj: dict[str, Any]) -> None:
        try:
            await self.handle(kind, obj)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one handler must not stop the watch of a whole kind
            log.exception("handler failed for %s %s", self.resource.kind, _key(obj))
