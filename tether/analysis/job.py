"""The Job provider: run a Kubernetes Job; its outcome and exit code are the measurement.

The Kubernetes API is ``tether.cluster``'s alone, so this provider talks to it through
:class:`JobCluster`, four verbs that delivery wires to its cluster client. Each measurement
creates one Job from the template's ``spec`` (plus its labels and annotations, the caller's
labels and Tether's ``tether.dev/analysis-*`` labels), waits for the Job controller to mark it
``Complete`` or ``Failed``, reads the exit code of its pods' terminated containers, and deletes
it (background propagation: its pods go with it) before the measurement is handed on. A
measurement cancelled while its Job runs leaves the Job: the caller decides whether the analysis
goes on elsewhere (a new leader adopts it) or is given up (then it deletes the Jobs by label).

A Job that already carries the same labels and is not being deleted is a measurement a previous
agent started and never recorded (it was killed or lost its lease): it is adopted, not created a
second time. The caller's labels (delivery: the App, the rollout and the step) make that match
exact. A Job the API server refuses to create (``JobRefused``: the identity may not) raises
``MeasurementRefused``: retrying cannot help, so the analysis ends at once.

``result`` is ``{"exitCode": N, "succeeded": true|false, "reason": "..."}``. The exit code is the
first non-zero code among its failed pods' containers, 0 for a complete Job, and -1 when a failed
Job left none to read (its deadline passed before a pod ran). A Job metric without conditions
gets ``result.exitCode == 0`` as its success condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tether.analysis.provider import MeasurementError, MeasurementRefused
from tether.errors import TetherError

DEFAULT_SUCCESS_CONDITION = "result.exitCode == 0"
DEFAULT_TIMEOUT = 600.0
DEFAULT_POLL = 1.0
RUN_LABEL = "tether.dev/analysis-run"
METRIC_LABEL = "tether.dev/analysis-metric"
_NO_EXIT_CODE = -1
_NAME_LENGTH = 52  # leaves room for the Job controller's pod-name suffix


class JobRefused(TetherError):
    """The API server refused to create a Job (forbidden, or the spec is invalid): the same
    request would be refused again."""


class JobCluster(Protocol):
    """The Kubernetes API, as much as the Job provider needs (delivery wires it to the
    cluster client; every failure may raise a TetherError)."""

    async def create_job(self, job: dict[str, Any]) -> None:
        """Create a batch/v1 Job (``JobRefused`` when the API server will never accept it)."""
        ...

    async def find_jobs(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """The Jobs in ``namespace`` carrying every one of ``labels``."""
        ...

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Job as the API server has it, or None once gone."""
        ...

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The pods the Job controller made for it (label ``batch.kubernetes.io/job-name``)."""
        ...

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete the Job and, in the background, its pods."""
        ...


@dataclass(frozen=True)
class JobProvider:
    """Runs one Job per measurement in ``namespace``."""

    cluster: JobCluster
    namespace: str
    spec: Mapping[str, Any]
    run: str  # the analysis run's name: Jobs are named and labelled after it and the metric
    metric: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    run_labels: Mapping[str, str] = field(default_factory=dict)  # the caller's: App, step, ...
    timeout: float = DEFAULT_TIMEOUT
    poll: float = DEFAULT_POLL
    # Jobs this provider already measured: one whose deletion failed is never measured twice
    measured: set[str] = field(default_factory=set, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "job"

    async def measure(self) -> object:
        name = await self._start()
        where = f"Job {self.namespace}/{name}"
        try:
            finished = await asyncio.wait_for(self._finished(name, where), self.timeout)
            pods = await self.cluster.job_pods(self.namespace, name)
        except TimeoutError:
            await self._delete(name)
            raise MeasurementError(f"{where} did not finish within {self.timeout:g} s") from None
        except TetherError as error:
            await self._delete(name)
            raise MeasurementError(f"{where} could not be read: {error}") from None
        # Cancelled, the Job is left running for whoever goes on with the analysis (a new
        # leader adopts it); the caller deletes the Jobs of an analysis it gives up.
        self.measured.add(name)
        await self._delete(name)
        return _outcome(finished, pods)

    async def _delete(self, name: str) -> None:
        # A Job left behind is clutter, not a wrong verdict: it carries the run's labels.
        with contextlib.suppress(TetherError):
            await self.cluster.delete_job(self.namespace, name)

    async def _start(self) -> str:
        """The name of this measurement's Job: one a previous agent left running, or a new one."""
        job = self.manifest()
        where = f"Job {self.namespace}/{job['metadata']['name']}"
        try:
            left = [
                found
                for found in await self.cluster.find_jobs(self.namespace, self.own_labels())
                if not (found.get("metadata") or {}).get("deletionTimestamp")
                and found["metadata"]["name"] not in self.measured
            ]
            if left:
                return str(left[0]["metadata"]["name"])
            await self.cluster.create_job(job)
        except JobRefused as error:
            raise MeasurementRefused(f"{where} could not be created: {error}") from None
        except TetherError as error:
            raise MeasurementError(f"{where} could not be created: {error}") from None
        return str(job["metadata"]["name"])

    def own_labels(self) -> dict[str, str]:
        """The labels that make a Job this provider's (the template's own are not needed)."""
        return {
            **{key: _label(value) for key, value in self.run_labels.items()},
            RUN_LABEL: _label(self.run),
            METRIC_LABEL: _label(self.metric),
        }

    def manifest(self) -> dict[str, Any]:
        """The Job one measurement creates (a new name each time)."""
        labels = {**self.labels, **self.own_labels()}
        base = _name(f"{self.run}-{self.metric}")
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{base}-{uuid.uuid4().hex[:6]}",
                "namespace": self.namespace,
                "labels": labels,
                "annotations": dict(self.annotations),
            },
            "spec": copy.deepcopy(dict(self.spec)),
        }

    async def _finished(self, name: str, where: str) -> tuple[bool, str]:
        while True:
            job = await self.cluster.read_job(self.namespace, name)
            if job is None:
                raise MeasurementError(f"{where} was deleted before it finished")
            for condition in job.get("status", {}).get("conditions") or []:
                if condition.get("status") != "True":
                    continue
                if condition.get("type") == "Complete":
                    return True, condition.get("reason") or "Complete"
                if condition.get("type") == "Failed":
                    return False, condition.get("reason") or "Failed"
            await asyncio.sleep(self.poll)


def _outcome(finished: tuple[bool, str], pods: list[dict[str, Any]]) -> dict[str, Any]:
    succeeded, reason = finished
    codes = [
        int(status["state"]["terminated"].get("exitCode", 0))
        for pod in pods
        for status in pod.get("status", {}).get("containerStatuses") or []
        if "terminated" in (status.get("state") or {})
    ]
    failing = [code for code in codes if code != 0]
    exit_code = 0 if succeeded else next(iter(failing), _NO_EXIT_CODE)
    return {"exitCode": exit_code, "succeeded": succeeded, "reason": reason}


def _name(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:_NAME_LENGTH].rstrip("-") or "analysis"


def _label(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    return cleaned[:63].rstrip("-_.")
