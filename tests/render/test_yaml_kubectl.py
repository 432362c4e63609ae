"""Tether reads YAML exactly as kubectl does: the generated corpus of scalar forms
(tests/render/yaml_corpus.py) is applied twice to the real API server, once with the real
kubectl and once with Tether's loader and client, into a custom resource of this test whose
schema keeps unknown fields; the stored objects must be equal, case by case.

Where Tether refuses a case, the real kubectl must refuse it too, except for the deliberate
differences (a key given twice: kubectl silently keeps the last value, Tether says so).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Kubectl
from tests.render.yaml_corpus import Case, cases, document
from tether.cluster import kubeconfig
from tether.cluster.client import KubeClient
from tether.core import kubeyaml
from tether.devcluster.controlplane import DevCluster

pytestmark = pytest.mark.cluster

GROUP = "yaml.tether.dev"
CARRIER_CRD = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: carriers.{GROUP}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{kind: Carrier, plural: carriers, singular: carrier, listKind: CarrierList}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"""
# Cases kubectl accepts and Tether refuses on purpose (see docs/decisions/0006-*).
DELIBERATE = {"duplicate", "duplicate-spelled", "duplicate-bool"}
PER_OBJECT = 60


@pytest.fixture(scope="module")
def carrier(kubectl: Kubectl) -> Iterator[None]:
    """The carrier CRD: a custom resource that stores any JSON under ``spec``."""
    kubectl("apply", "--server-side", "-f", "-", stdin=CARRIER_CRD)
    kubectl("wait", "--for=condition=Established", f"crd/carriers.{GROUP}", "--timeout=60s")
    yield
    kubectl("delete", f"crd/carriers.{GROUP}", "--wait=false", check=False)


def grouped(name: str, namespace: str, batch: list[tuple[int, Case]]) -> str:
    """One object whose ``spec`` holds each case of ``batch`` under ``c<index>``."""
    body = "".join(
        f"c{index}:\n" + "".join(f"  {line}\n" for line in case.body.splitlines())
        for index, case in batch
    )
    return document(name, namespace, body)


def tether_reads(text: str) -> list[dict[str, Any]] | str:
    try:
        return [item.data for item in kubeyaml.load_all(text)]
    except kubeyaml.YamlProblem as problem:
        return problem.problem


async def apply_with_tether(dev_cluster: DevCluster, objects: list[dict[str, Any]]) -> None:
    async with KubeClient(kubeconfig.load(dev_cluster.kubeconfig_path)) as client:
        resource = await client.resource(f"{GROUP}/v1", "Carrier")
        for body in objects:
            await client.apply(resource, body, dry_run=False)


def stored(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    listing = json.loads(kubectl("get", "carriers", "-n", namespace, "-o", "json").stdout)
    return {item["metadata"]["name"]: item.get("spec", {}) for item in listing["items"]}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_corpus_is_stored_the_same_through_kubectl_and_tether(
    kubectl: Kubectl, dev_cluster: DevCluster, namespace: str, carrier: None, tmp_path: Path
) -> None:
    corpus = list(enumerate(cases()))
    accepted = [
        (index, case)
        for index, case in corpus
        if not isinstance(tether_reads(document("x", namespace, case.body)), str)
    ]
    assert len(accepted) > 900, "the corpus should mostly be valid"
    batches = [accepted[start : start + PER_OBJECT] for start in range(0, len(accepted), 60)]

    through_kubectl = "---\n".join(
        grouped(f"k-{number}", namespace, batch) for number, batch in enumerate(batches)
    )
    (tmp_path / "kubectl.yaml").write_text(through_kubectl)
    result = kubectl("apply", "--server-side", "-f", str(tmp_path / "kubectl.yaml"), check=False)
    assert result.returncode == 0, f"kubectl refused what Tether accepts: {result.stderr}"

    loaded: list[dict[str, Any]] = []
    for number, batch in enumerate(batches):
        data = tether_reads(grouped(f"t-{number}", namespace, batch))
        assert not isinstance(data, str), data
        loaded += data
    asyncio.run(apply_with_tether(dev_cluster, loaded))

    objects = stored(kubectl, namespace)
    mismatches = []
    for number, batch in enumerate(batches):
        by_kubectl, by_tether = objects[f"k-{number}"], objects[f"t-{number}"]
        sent = loaded[number]["spec"]
        for index, case in batch:
            key = f"c{index}"
            if canonical(by_kubectl.get(key)) != canonical(by_tether.get(key)):
                mismatches.append(
                    f"{case.name}: kubectl {by_kubectl.get(key)!r}, tether {by_tether.get(key)!r}"
                )
            elif canonical(sent.get(key)) != canonical(by_tether.get(key)):
                mismatches.append(
                    f"{case.name}: Tether read {sent.get(key)!r}, server stored {by_tether.get(key)!r}"
                )
    assert not mismatches, "\n".join(mismatches)


def test_what_tether_refuses_kubectl_refuses(
    kubectl: Kubectl, namespace: str, carrier: None
) -> None:
    refused = []
    for index, case in enumerate(cases()):
        text = document(f"r-{index}", namespace, case.body)
        problem = tether_reads(text)
        if isinstance(problem, str):
            refused.append((case, text, problem))
    assert len(refused) > 50, "the corpus should hold documents both refuse"

    def by_kubectl(text: str) -> subprocess.CompletedProcess[str]:
        return kubectl("apply", "--server-side", "-f", "-", stdin=text, check=False)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(by_kubectl, [text for _, text, _ in refused]))
    disagreements = []
    for (case, _, problem), result in zip(refused, results, strict=True):
        kubectl_refused = result.returncode != 0
        if kubectl_refused == (case.name in DELIBERATE):
            disagreements.append(
                f"{case.name}: Tether: {problem}; kubectl: {result.stderr or 'ok'}"
            )
    assert not disagreements, "\n".join(disagreements)
