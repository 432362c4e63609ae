"""Hook Jobs that finish and vanish: seeing a chart hook's Job finish even when it is deleted
right after (``ttlSecondsAfterFinished: 0``, or a controller honouring
``helm.sh/hook-delete-policy: hook-succeeded``), as ingress-nginx's admission Jobs are.

    async with FinishedJobs(client, resource, jobs, selector, outcomes):
        ... apply the jobs, poll their health ...
    outcomes  -> {ObjectRef: (HealthStatus.HEALTHY | DEGRADED, message)}, filled as seen

Polling alone can miss such a Job: it completes and is gone between two polls, and the sync
would wait for a Job that will never appear again. So while a weight of hooks runs, the Jobs
of its namespaces are watched from the resourceVersion of a list taken before the apply (no
event can fall in between); a Job seen with condition ``Complete`` (or ``Failed``) keeps that
outcome after it is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

from tether.cluster.client import ApiError, KubeClient, Resource
from tether.core import HealthStatus, ObjectRef
from tether.errors import ClusterError

_WATCH_SECONDS = 300


class FinishedJobs:
    """Watches ``jobs`` (hook Jobs of kind ``resource``, labelled ``selector``) while a hook
    weight runs, writing each one's outcome into ``outcomes`` as soon as it is seen."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        jobs: list[ObjectRef],
        selector: str,
        outcomes: dict[ObjectRef, tuple[HealthStatus, str]],
    ) -> None:
        self._client, self._resource, self._selector = client, resource, selector
        self._wanted = {(ref.namespace, ref.name): ref for ref in jobs}
        self._outcomes = outcomes
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> FinishedJobs:
        for namespace in sorted({namespace for namespace, _ in self._wanted}):
            try:
                _, version = await self._client.list_with_version(
                    self._resource, namespace, self._selector
                )
            except ApiError:
                continue  # the app's identity may not list Jobs here: polling alone, as before
            self._tasks.append(asyncio.create_task(self._watch(namespace, version)))
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, ClusterError):
                await task

    async def _watch(self, namespace: str, version: str) -> None:
        events = self._client.watch(
            self._resource, namespace, version, self._selector, _WATCH_SECONDS
        )
        async for event in events:
            obj = event.get("object") or {}
            metadata = obj.get("metadata") or {}
            ref = self._wanted.get((namespace, metadata.get("name", "")))
            if ref is not None and event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                outcome = _finished(obj)
                if outcome is not None:
                    self._outcomes[ref] = outcome


def _finished(job: dict[str, Any]) -> tuple[HealthStatus, str] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return HealthStatus.HEALTHY, "completed, then deleted (ttlSecondsAfterFinished)"
        if condition.get("type") == "Failed":
            reason = condition.get("message") or condition.get("reason") or "failed"
            return HealthStatus.DEGRADED, f"failed, then deleted: {reason}"
    return None
