"""Leader election with a ``coordination.k8s.io/v1`` Lease, so two agent replicas never act on
the same apps at once. It follows client-go's rules:

- another holder's Lease is expired when this replica has seen no change to it (its
  resourceVersion) for ``leaseDurationSeconds``, measured on this replica's own monotonic clock,
  never by comparing its clock with the ``renewTime`` another machine wrote;
- the leader renews every ``retry_period``; if it could not renew for ``renew_deadline``
  (shorter than the lease), it stops acting at once, before any other replica may take over;
- each attempt is bounded by what is left of the deadline, so a paused API server cannot hold
  the leader in a hung request past it.

The Lease is written through its own small client, so renewal never queues behind sync traffic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tether.cluster.client import ApiError, KubeClient
from tether.errors import ClusterError

log = logging.getLogger("tether.agent.leader")


@dataclass(frozen=True)
class LeaseTiming:
    """client-go's defaults are 15 s / 10 s / 2 s; these keep the same proportions."""

    duration: float = 15.0

    @property
    def renew_deadline(self) -> float:
        return self.duration * 2 / 3

    @property
    def retry_period(self) -> float:
        return self.duration * 2 / 15


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Holds one Lease; runs ``lead`` while it is the holder and cancels it when it is not."""

    def __init__(
        self, client: KubeClient, namespace: str, name: str, identity: str, duration: float = 15.0
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = LeaseTiming(duration)
        self.is_leader = False
        self.api_reachable = False  # the API server answered at least once
        self._observed_version = ""
        self._observed_at = 0.0  # monotonic time the Lease was last seen to change

    def _lease(self, previous: dict[str, Any] | None, transitions: int) -> dict[str, Any]:
        now = _format(datetime.now(UTC))
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.duration)),
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

    def _observe(self, lease: dict[str, Any]) -> None:
        version = str(lease.get("metadata", {}).get("resourceVersion", ""))
        if version != self._observed_version:
            self._observed_version = version
            self._observed_at = time.monotonic()

    def _held_by_another(self, lease: dict[str, Any]) -> bool:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if not holder or holder == self.identity:
            return False
        duration = float(spec.get("leaseDurationSeconds") or self.timing.duration)
        return time.monotonic() < self._observed_at + duration

    async def try_acquire_or_renew(self) -> bool:
        """One round: True when this replica holds the Lease afterwards."""
        resource = await self.client.resource("coordination.k8s.io/v1", "Lease")
        current = await self.client.get(resource, self.namespace, self.name)
        self.api_reachable = True
        try:
            if current is None:
                self._observe(await self.client.create(resource, self._lease(None, 0)))
                return True
            self._observe(current)
            if self._held_by_another(current):
                return False
            spec = current.get("spec") or {}
            transitions = int(spec.get("leaseTransitions") or 0)
            transitions += spec.get("holderIdentity") != self.identity
            self._observe(await self.client.replace(resource, self._lease(current, transitions)))
            return True
        except ApiError as error:
            if error.conflict:
                return False  # someone else won the compare-and-swap
            raise

    async def _attempt(self, timeout: float) -> bool | None:
        """One bounded round: True held, False held by another, None no answer in time."""
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), max(timeout, 0.05))
        except TimeoutError:
            log.warning("leader election: no answer within %.1fs", timeout)
        except ClusterError as error:
            log.warning("leader election failed: %s", error)
        return None

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Forever: campaign, lead while holding the Lease, step down when renewal fails."""
        while True:
            if not await self._attempt(self.timing.renew_deadline):
                await asyncio.sleep(self.timing.retry_period)
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
        """Renew until ``leading`` ends, another replica holds the Lease, or the renew deadline
        passes without a successful renewal."""
        renewed = time.monotonic()
        while not leading.done():
            await asyncio.sleep(self.timing.retry_period)
            outcome = await self._attempt(renewed + self.timing.renew_deadline - time.monotonic())
            if outcome is False:
                log.warning("another replica holds the lease")
                return
            if outcome:
                renewed = time.monotonic()
            elif time.monotonic() >= renewed + self.timing.renew_deadline:
                log.warning("could not renew the lease within %.1fs", self.timing.renew_deadline)
                return

    async def release(self) -> None:
        """Give the Lease up on a clean shutdown so another replica takes over at once."""
        resource = await self.client.resource("coordination.k8s.io/v1", "Lease")
        try:
            current = await self.client.get(resource, self.namespace, self.name)
            if current and (current.get("spec") or {}).get("holderIdentity") == self.identity:
                current["spec"]["holderIdentity"] = ""
                current["spec"]["leaseDurationSeconds"] = 1
                await self.client.replace(resource, current)
        except ClusterError as error:
            log.warning("could not release the lease: %s", error)
