"""The Job provider through its cluster wiring, against the real control plane.

What is real and what is not: the API server, the Job controller (kube-controller-manager) that
creates the pods and turns their outcome into the Job's Complete or Failed condition, and the
scheduler are real. No container runs: kwok plays the kubelet. For the passing Job, kwok itself
marks the Job's pod Succeeded with exit code 0 (its handling of pods owned by Jobs). For the
failing Job, the pod is kept off kwok's nodes (a node selector nothing matches) and the test
writes the pod's status, Failed with exit code 3, in the kubelet's place.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Kubectl
from tether.analysis import Measurement, Phase, Verdict, read_template, run_analysis
from tether.analysis.job import RUN_LABEL
from tether.analysis.template import JobContext
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load
from tether.delivery.analysiscluster import JOB_NAME_LABEL, KubeJobs
from tether.devcluster.controlplane import DevCluster

UNSCHEDULABLE = {"tether.dev/test-node": "none-has-this-label"}


def _template(pod_spec: dict[str, Any]) -> Any:
    return read_template(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "smoke"},
            "spec": {
                "args": [{"name": "url"}],
                "metrics": [
                    {
                        "name": "smoke-test",
                        "provider": {
                            "job": {
                                "metadata": {"labels": {"team": "shop"}},
                                "spec": {
                                    "backoffLimit": 0,
                                    "template": {
                                        "spec": {
                                            "restartPolicy": "Never",
                                            "containers": [
                                                {
                                                    "name": "smoke",
                                                    "image": "curlimages/curl:8.11.0",
                                                    "args": ["--fail", "{{args.url}}"],
                                                }
                                            ],
                                            **pod_spec,
                                        }
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
    )


async def _fail_the_pod_as_a_kubelet_would(client: KubeClient, namespace: str) -> str:
    """Wait for the Job's pod, then write its status: the container exited with code 3."""
    pods = await client.resource("v1", "Pod")
    while True:
        found = await client.list(pods, namespace, label_selector=JOB_NAME_LABEL)
        if found:
            break
        await asyncio.sleep(0.2)
    pod = found[0]
    now = "2026-11-27T12:00:00Z"
    await client.patch_status(
        pods,
        namespace,
        pod["metadata"]["name"],
        {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "smoke",
                    "image": "curlimages/curl:8.11.0",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 3,
                            "reason": "Error",
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
            ],
        },
    )
    return str(pod["metadata"]["labels"][JOB_NAME_LABEL])


def test_a_job_that_completes_is_a_successful_measurement(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str
):
    async def run() -> tuple[Any, list[Measurement]]:
        seen: list[Measurement] = []
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            jobs = JobContext(KubeJobs(client), namespace, "shop-canary-1")
            metrics = _template({}).instantiate({"url": "http://shop"}, jobs=jobs)
            return await run_analysis(metrics, on_measurement=seen.append), seen

    result, seen = asyncio.run(run())

    assert result.verdict is Verdict.SUCCESSFUL, result.reasons()
    measurement = seen[0]
    assert measurement.phase is Phase.SUCCESSFUL
    assert measurement.value == {"exitCode": 0, "succeeded": True, "reason": "CompletionsReached"}
    assert measurement.message == "successCondition 'result.exitCode == 0' held"
    leftover = kubectl(
        "get", "jobs", "-n", namespace, "-l", f"{RUN_LABEL}=shop-canary-1", "-o", "name"
    )
    assert leftover.stdout.strip() == ""  # the Job was deleted after its measurement


def test_a_job_whose_container_exits_non_zero_is_a_failed_measurement(
    dev_cluster: DevCluster, namespace: str
):
    async def run() -> tuple[Any, str]:
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            jobs = JobContext(KubeJobs(client), namespace, "shop-canary-2")
            metrics = _template({"nodeSelector": UNSCHEDULABLE}).instantiate(
                {"url": "http://shop"}, jobs=jobs
            )
            analysis = asyncio.create_task(run_analysis(metrics))
            job_name = await asyncio.wait_for(
                _fail_the_pod_as_a_kubelet_would(client, namespace), 60
            )
            return await asyncio.wait_for(analysis, 120), job_name

    result, job_name = asyncio.run(run())

    assert job_name.startswith("shop-canary-2-smoke-test-")
    assert result.verdict is Verdict.FAILED
    measurement = result.metrics[0].measurements[0]
    assert measurement.phase is Phase.FAILED
    assert measurement.value == {
        "exitCode": 3,
        "succeeded": False,
        "reason": "BackoffLimitExceeded",
    }
    assert measurement.message == "successCondition 'result.exitCode == 0' did not hold"
