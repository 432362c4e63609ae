"""Job metrics as delivery wires them, against the real control plane: the Job runs as the App's
identity, in the App's namespace, labelled with the App, the rollout and the step.

What is real: the API server (its RBAC refuses what the identity may not do), the Job controller
and the scheduler; kwok plays the kubelet and marks a Job's pod Succeeded with exit code 0. A
pod kept off kwok's nodes (a node selector nothing matches) stays Pending until the test writes
its status in the kubelet's place.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from tests.analysis.test_job import UNSCHEDULABLE
from tests.conftest import Kubectl
from tests.delivery.test_machine import canary, seen
from tether.analysis import JobContext, read_template
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load
from tether.core import Manifest
from tether.delivery.analysiscluster import (
    JOB_NAME_LABEL,
    KubeJobs,
    delete_jobs,
    job_labels,
)
from tether.delivery.canary import AnalysisWiring, run_step_analysis
from tether.delivery.machine import Abort, advance
from tether.delivery.model import AnalysisStep, Phase
from tether.devcluster.controlplane import DevCluster

APP = "team/shop"
DIGEST = "0123456789abcdef"


def smoke_template(pod_spec: dict[str, Any] | None = None) -> Manifest:
    return Manifest(
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "smoke"},
            "spec": {
                "metrics": [
                    {
                        "name": "smoke-test",
                        "provider": {
                            "job": {
                                "spec": {
                                    "backoffLimit": 0,
                                    "template": {
                                        "spec": {
                                            "restartPolicy": "Never",
                                            "containers": [{"name": "smoke", "image": "smoke:1"}],
                                            **(pod_spec or {}),
                                        }
                                    },
                                }
                            }
                        },
                    }
                ]
            },
        }
    )


def service_account(kubectl: Kubectl, namespace: str, name: str, verbs: str) -> str:
    """ServiceAccount ``name`` allowed ``verbs`` on Jobs and reading pods: ``namespace/name``."""
    kubectl("create", "serviceaccount", name, "-n", namespace)
    kubectl("create", "role", name, "-n", namespace, f"--verb={verbs}", "--resource=jobs")
    kubectl("create", "rolebinding", name, "-n", namespace, f"--role={name}",
            f"--serviceaccount={namespace}:{name}")  # fmt: skip
    kubectl("create", "role", f"{name}-pods", "-n", namespace, "--verb=get,list",
            "--resource=pods")  # fmt: skip
    kubectl("create", "rolebinding", f"{name}-pods", "-n", namespace, f"--role={name}-pods",
            f"--serviceaccount={namespace}:{name}")  # fmt: skip
    return f"{namespace}/{name}"


class CountedJobs(KubeJobs):
    """The real adapter, counting the Jobs it creates."""

    def __init__(self, client: KubeClient) -> None:
        super().__init__(client)
        self.created: list[str] = []

    async def create_job(self, job: dict[str, Any]) -> None:
        await super().create_job(job)
        self.created.append(job["metadata"]["name"])


def test_a_job_the_apps_identity_may_not_create_is_a_refused_error_and_on_failure_applies(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str
) -> None:
    identity = service_account(kubectl, namespace, "no-create", "get,list,watch,delete")
    step = AnalysisStep(("smoke",))

    async def run() -> Any:
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            jobs = KubeJobs(client.impersonating(identity))
            context = JobContext(jobs, namespace, "web-0123456-s1", job_labels(APP, DIGEST, 1))
            wiring = AnalysisWiring(context)
            return await run_step_analysis(1, step, [smoke_template()], (), lambda _: None, wiring)

    status = asyncio.run(run())

    assert status.phase == "Error" and status.refused, status
    (reason,) = status.reasons
    assert f"Job {namespace}/web-0123456-s1-smoke-test-" in reason
    assert "could not be created" in reason and "forbidden" in reason.lower()
    assert kubectl("get", "jobs", "-n", namespace, "-o", "name").stdout.strip() == ""
    # the refusal is not a pause: the rollout's onFailure applies (here rollback: an abort)
    spec = canary([{"setWeight": 25}, {"analysis": {"templates": [{"templateName": "smoke"}]}}])
    at_analysis = advance(spec, advance(spec, None, seen()).status, seen(candidate_available=1))
    assert at_analysis.status.step == 1
    result = advance(spec, replace(at_analysis.status, analysis=status), seen())
    assert result.status.phase is Phase.ABORTED
    (abort,) = [a for a in result.actions if isinstance(a, Abort)]
    assert "could not be created" in abort.reason


def test_a_job_left_running_by_a_previous_leader_is_adopted_then_deleted_with_its_verdict(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str
) -> None:
    identity = service_account(kubectl, namespace, "runner", "get,list,watch,create,delete")
    labels = job_labels(APP, DIGEST, 1)

    async def run() -> tuple[Any, list[str], str]:
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            as_app = client.impersonating(identity)
            # the first leader created the Job (its pod never runs by itself), then died
            first = CountedJobs(as_app)
            context = JobContext(first, namespace, "web-0123456-s1", labels)
            template = read_template(smoke_template({"nodeSelector": UNSCHEDULABLE}).body)
            (metric,) = template.instantiate({}, jobs=context)
            await first.create_job(metric.provider.manifest())  # type: ignore[attr-defined]
            # the new leader's template would pass at once if it created a Job of its own
            second = CountedJobs(as_app)
            wiring = AnalysisWiring(JobContext(second, namespace, "web-0123456-s1", labels))
            analysis = asyncio.create_task(
                run_step_analysis(
                    1, AnalysisStep(("smoke",)), [smoke_template()], (), lambda _: None, wiring
                )
            )
            await asyncio.wait_for(_fail_the_pod(client, namespace, first.created[0]), 60)
            status = await asyncio.wait_for(analysis, 120)
            return status, second.created, first.created[0]

    status, created_again, adopted = asyncio.run(run())

    assert created_again == [], "the new leader created a second Job"
    assert status.phase == "Failed", status  # the adopted Job's verdict: exit code 3
    (measured,) = status.measurements
    assert measured["value"]["exitCode"] == 3
    left = kubectl("get", "jobs", "-n", namespace, "-o", "name").stdout.strip()
    assert adopted not in left, "the Job was deleted once its measurement was taken"


def test_the_sweep_deletes_only_the_jobs_of_its_app_rollout_and_step(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str
) -> None:
    async def run() -> None:
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            jobs = KubeJobs(client)
            for step in (1, 2):
                context = JobContext(jobs, namespace, f"web-s{step}", job_labels(APP, DIGEST, step))
                template = read_template(smoke_template({"nodeSelector": UNSCHEDULABLE}).body)
                (metric,) = template.instantiate({}, jobs=context)
                await jobs.create_job(metric.provider.manifest())  # type: ignore[attr-defined]
            await delete_jobs(jobs, namespace, job_labels(APP, DIGEST, 1))

    asyncio.run(run())
    left = kubectl("get", "jobs", "-n", namespace, "-o", "name").stdout.split()
    assert len(left) == 1 and left[0].startswith("job.batch/web-s2-smoke-test-"), left


async def _fail_the_pod(client: KubeClient, namespace: str, job: str) -> None:
    """Write the status of Job ``job``'s pod as a kubelet would: its container exited 3."""
    pods = await client.resource("v1", "Pod")
    while not (found := await client.list(pods, namespace, f"{JOB_NAME_LABEL}={job}")):
        await asyncio.sleep(0.2)
    now = "2026-11-28T02:00:00Z"
    terminated = {"exitCode": 3, "reason": "Error", "startedAt": now, "finishedAt": now}
    await client.patch_status(
        pods,
        namespace,
        found[0]["metadata"]["name"],
        {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "smoke",
                    "image": "smoke:1",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        },
    )
