"""The wiring of the Job provider to the cluster client, as delivery will do it.

``tether.analysis`` may not talk to the Kubernetes API (only ``tether.cluster`` does), so its Job
provider asks a ``JobCluster`` for four verbs. This adapter answers them with the real
``KubeClient``; the tests run the provider through it against the real control plane.
"""

from __future__ import annotations

from typing import Any

from tether.cluster.client import KubeClient

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class KubeJobs:
    """``JobCluster`` over a KubeClient."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def create_job(self, job: dict[str, Any]) -> None:
        await self.client.create(await self.client.resource("batch/v1", "Job"), job)

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.client.get(await self.client.resource("batch/v1", "Job"), namespace, name)

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        pods = await self.client.resource("v1", "Pod")
        return await self.client.list(pods, namespace, label_selector=f"{JOB_NAME_LABEL}={name}")

    async def delete_job(self, namespace: str, name: str) -> None:
        await self.client.delete(await self.client.resource("batch/v1", "Job"), namespace, name)
