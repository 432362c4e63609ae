"""Leader election with a ``coordination.k8s.io/v1`` Lease, so two agent replicas never act on
the same apps. Acquire when the Lease is free or expired; renew every third of its duration with
a compare-and-swap on resourceVersion; a replica that cannot renew before the Lease expires
stops acting at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from tether.cluster.client import ApiError, KubeClient
from tether.errors import ClusterError

log = logging.getLogger("tether.agent.leader")


def _now() -> datetime:
    return datetime.now(UTC)


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class LeaderElector:
    """Holds one Lease; runs ``lead`` while it is the holder and cancels it when it is not."""

    def __init__(
        self, client: KubeClient, namespace: str, name: str, identity: str, duration: float = 15.0
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.is_leader = False

    def _lease(self, previous: dict[str, Any] | None, transitions: int) -> dict[str, Any]:
        now = _format(_now())
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": now,
            "acquireTime": now,
            "leaseTransitions": transitions,
        }
        if previous and (previous.get("spec") or {}).get("holderIdentity") == self.identity:
            spec["acquireTime"] = previous["spec"].get("acquireTime", now)
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if previous:
            metadata["resourceVersion"] = previous["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One round: True when this replica holds the Lease afterwards."""
        resource = await self.client.resource("coordination.k8s.io/v1", "Lease")
        current = await self.client.get(resource, self.namespace, self.name)
        try:
            if current is None:
                await self.client.create(resource, self._lease(None, 0))
                return True
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity")
            renewed = _parse(spec.get("renewTime"))
            expired = renewed is None or _now() > renewed + timedelta(
                seconds=float(spec.get("leaseDurationSeconds") or self.duration)
            )
            if holder != self.identity and not expired:
                return False
            transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
            await self.client.replace(resource, self._lease(current, transitions))
            return True
        except ApiError as error:
            if error.conflict:
                return False  # someone else won the compare-and-swap
            raise

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Forever: campaign, lead while holding the Lease, step down when renewal fails."""
        while True:
            try:
                acquired = await self.try_acquire_or_renew()
            except ClusterError as error:
                log.warning("leader election failed: %s", error)
                acquired = False
            if not acquired:
                await asyncio.sleep(self.duration / 3)
                continue
            log.info(
                "became leader",
                extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity},
            )
            self.is_leader = True
            leading: asyncio.Task[None] = asyncio.create_task(lead())
            try:
                await self._keep_renewing(leading)
            finally:
                self.is_leader = False
                leading.cancel()
                await asyncio.gather(leading, return_exceptions=True)
                log.warning("stopped leading", extra={"lease": f"{self.namespace}/{self.name}"})

    async def _keep_renewing(self, leading: asyncio.Task[None]) -> None:
        deadline = _now() + timedelta(seconds=self.duration)
        while not leading.done():
            await asyncio.sleep(self.duration / 3)
            try:
                if await self.try_acquire_or_renew():
                    deadline = _now() + timedelta(seconds=self.duration)
                    continue
                return  # another replica holds it now
            except ClusterError as error:
                log.warning("lease renewal failed: %s", error)
            if _now() > deadline - timedelta(seconds=self.duration / 3):
                return

    async def release(self) -> None:
        """Give the Lease up on a clean shutdown so another replica takes over at once."""
        resource = await self.client.resource("coordination.k8s.io/v1", "Lease")
        current = await self.client.get(resource, self.namespace, self.name)
        if current and (current.get("spec") or {}).get("holderIdentity") == self.identity:
            current["spec"]["renewTime"] = _format(_now() - timedelta(seconds=self.duration * 2))
            try:
                await self.client.replace(resource, current)
            except ClusterError as error:
                log.warning("could not release the lease: %s", error)
