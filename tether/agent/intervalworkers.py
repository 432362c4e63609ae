"""The shape every source the agent fetches shares (GitSource, HelmSource, OCISource): the
informer's events start, update and stop one worker per source, and each worker fetches its
source at once, then again after its interval (jittered) or as soon as it is triggered (a
changed spec, a webhook, an App asking for it), and not while the source is suspended.

Every kind's workers also share what they reach a source with: the Kubernetes client (for the
Secrets a source names), the fleet, the status writer, the alert queue, and the tenant rules
(decision 0013) built once from the agent's settings. What a fetch does, and what a changed
spec resets, stays with each kind's workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar

from tether.agent.alerts import AlertQueue
from tether.agent.settings import AgentSettings
from tether.agent.state import Fleet
from tether.agent.status import StatusWriter
from tether.cluster.client import KubeClient
from tether.source import FetchRules


class IntervalSpec(Protocol):
    """What the loop reads of a source's spec."""

    @property
    def key(self) -> str: ...

    @property
    def interval(self) -> float: ...

    @property
    def suspend(self) -> bool: ...


class IntervalState(Protocol):
    """What the loop reads and keeps of a source's state."""

    @property
    def spec(self) -> IntervalSpec: ...

    @property
    def trigger(self) -> asyncio.Event: ...

    task: asyncio.Task[None] | None


SpecT = TypeVar("SpecT", bound=IntervalSpec)
StateT = TypeVar("StateT", bound=IntervalState)


def jittered(seconds: float) -> float:
    """±10% so that many apps with one interval do not all wake at once (not security-relevant)."""
    return seconds * random.uniform(0.9, 1.1)  # noqa: S311


class IntervalWorkers(ABC, Generic[SpecT, StateT]):
    """One worker per source of one kind, kept in ``states`` (the fleet's map of that kind)."""

    def __init__(
        self,
        states: dict[str, StateT],
        client: KubeClient,
        fleet: Fleet,
        status: StatusWriter,
        alerts: AlertQueue,
        settings: AgentSettings,
    ) -> None:
        self.states = states
        self.client = client
        self.fleet = fleet
        self.status = status
        self.alerts = alerts
        self.settings = settings
        self.rules = FetchRules.tenant(
            allow_local=settings.allow_local_sources,
            loopback_http_credentials=settings.loopback_http_credentials,
        )

    @abstractmethod
    def parse(self, obj: dict[str, Any]) -> SpecT:
        """The spec of the object the informer saw."""

    @abstractmethod
    def new_state(self, spec: SpecT) -> StateT:
        """The state of a source seen for the first time."""

    @abstractmethod
    def respec(self, state: StateT, spec: SpecT) -> None:
        """Give a running worker's ``state`` its changed ``spec`` (and forget what it voids)."""

    @abstractmethod
    async def fetch(self, state: StateT) -> None:
        """Fetch the source once, record what came of it and tell its Apps."""

    async def on_event(self, event: str, obj: dict[str, Any]) -> None:
        spec = self.parse(obj)
        current = self.states.get(spec.key)
        if event == "DELETED":
            if current and current.task:
                current.task.cancel()
            self.states.pop(spec.key, None)
            return
        if current is None:
            state = self.new_state(spec)
            self.states[spec.key] = state
            state.task = asyncio.create_task(self._worker(state))
        elif current.spec != spec:
            self.respec(current, spec)
            current.trigger.set()

    async def _worker(self, state: StateT) -> None:
        while True:
            if not state.spec.suspend:
                await self.fetch(state)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.trigger.wait(), jittered(state.spec.interval))
            state.trigger.clear()
