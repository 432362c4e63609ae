"""What an App's analysis reaches of the cluster, as the App's own identity (decision 0027).

``tether.analysis`` never talks to the Kubernetes API: its Job provider asks a ``JobCluster``,
and a template's secret arguments (``valueFrom.secretKeyRef``) are values the caller passes.
This module answers both with the agent's ``KubeClient`` impersonating the ServiceAccount the
App's manifests are applied as, so an analysis can do no more than the App's own deploys:

- ``KubeJobs``: the four verbs of ``JobCluster`` (and the label lookup that lets a new leader
  adopt the Job its predecessor left running). A refusal (401 or 403 to list or create, 422
  to create) is ``JobRefused``, an analysis Error that ends the analysis at once.
- ``SecretArgs``: reads one key of a Secret in the App's namespace. A missing Secret or key is
  an ``AnalysisError`` naming both; the value is returned, never put in a message.
- ``job_labels`` / ``delete_jobs``: the labels that say whose a Job is (App, rollout, step),
  and the sweep that deletes an analysis' Jobs once its verdict is in or the step was left.
- ``pod_template_hashes``: the stable's and the candidate's ``pod-template-hash`` for Argo's
  ``valueFrom.podTemplateHashValue`` arguments (read as the agent, like the traffic shaping).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from tether.analysis import JobRefused
from tether.cluster.client import ApiError, KubeClient
from tether.delivery.canary import PodTemplateHashes
from tether.delivery.traffic import observe_serving_hash
from tether.errors import AnalysisError

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
APP_LABEL = "tether.dev/analysis-app"
ROLLOUT_LABEL = "tether.dev/analysis-rollout"
STEP_LABEL = "tether.dev/analysis-step"
_FORBIDDEN = (401, 403)  # the identity may not: asking again cannot help
_REFUSED = (*_FORBIDDEN, 422)  # the same Job would be refused again (422: invalid)


class KubeJobs:
    """``JobCluster`` over a KubeClient (already impersonating the App's identity)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.used = False  # a Job metric asked for something: its Jobs may need a sweep

    async def create_job(self, job: dict[str, Any]) -> None:
        self.used = True
        try:
            await self.client.create(await self.client.resource("batch/v1", "Job"), job)
        except ApiError as error:
            if error.status in _REFUSED:
                raise JobRefused(str(error)) from None
            raise

    async def find_jobs(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        self.used = True
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        jobs = await self.client.resource("batch/v1", "Job")
        try:
            return await self.client.list(jobs, namespace, label_selector=selector)
        except ApiError as error:
            if error.status in _FORBIDDEN:
                raise JobRefused(str(error)) from None
            raise

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.client.get(await self.client.resource("batch/v1", "Job"), namespace, name)

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        pods = await self.client.resource("v1", "Pod")
        return await self.client.list(pods, namespace, label_selector=f"{JOB_NAME_LABEL}={name}")

    async def delete_job(self, namespace: str, name: str) -> None:
        await self.client.delete(await self.client.resource("batch/v1", "Job"), namespace, name)


def job_labels(app: str, digest: str, step: int) -> dict[str, str]:
    """The labels of every Job the analysis of ``app``'s rollout of ``digest`` at ``step`` runs
    (``app`` is ``namespace/name``: a label value cannot hold a slash, so it is hashed when the
    plain form does not fit)."""
    return {APP_LABEL: _label_value(app), ROLLOUT_LABEL: digest[:12], STEP_LABEL: str(step)}


async def delete_jobs(jobs: KubeJobs, namespace: str, labels: Mapping[str, str]) -> None:
    """Delete every Job carrying ``labels`` (their pods go in the background); nothing to do
    when no Job metric used ``jobs``."""
    if not jobs.used:
        return
    for job in await jobs.find_jobs(namespace, labels):
        await jobs.delete_job(namespace, str(job["metadata"]["name"]))


class SecretArgs:
    """Secret arguments read from ``namespace`` with ``client`` (the App's identity)."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    async def read(self, name: str, key: str) -> str:
        where = f"Secret {self.namespace}/{name}"
        if not name or not key:
            raise AnalysisError(
                f"a secretKeyRef needs a name and a key (got name {name!r}, key {key!r})"
            )
        try:
            secret = await self.client.get(
                await self.client.resource("v1", "Secret"), self.namespace, name
            )
        except ApiError as error:
            raise AnalysisError(f"{where} could not be read: {error.withheld}") from None
        if secret is None:
            raise AnalysisError(
                f"{where} not found: create it with key {key!r}, or pass the argument's value"
            )
        data = secret.get("data") or {}
        if key not in data:
            keys = ", ".join(sorted(data)) or "none"
            raise AnalysisError(f"{where} has no key {key!r} (its keys: {keys})")
        try:
            return base64.b64decode(data[key], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AnalysisError(f"{where} key {key!r} is not base64-encoded UTF-8 text") from None


def _label_value(text: str) -> str:
    plain = re.sub(r"[^A-Za-z0-9_.-]+", ".", text).strip("-_.")
    if len(plain) <= 63:
        return plain
    return f"{plain[:50].rstrip('-_.')}.{hashlib.sha256(text.encode()).hexdigest()[:12]}"


async def pod_template_hashes(
    client: KubeClient, namespace: str, stable: str, candidate: str
) -> PodTemplateHashes:
    """The ``pod-template-hash`` of the Deployments ``stable`` and ``candidate`` serve with now
    (``valueFrom.podTemplateHashValue`` arguments), read with the agent's own ``client`` (the
    one that shapes traffic), not the App's identity."""
    return PodTemplateHashes(
        await observe_serving_hash(client, namespace, stable),
        await observe_serving_hash(client, namespace, candidate),
    )
