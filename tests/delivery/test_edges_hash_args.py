"""``args[].valueFrom.podTemplateHashValue: Stable | Latest`` in a canary step's analysis
(Argo Rollouts' way of telling the versions' pods apart): read by the model, and given to the
template as the stable's or the candidate's ``pod-template-hash`` the rollout found."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml

from tests.conftest import Kubectl
from tether.analysis import read_template
from tether.analysis.prometheus import PrometheusProvider
from tether.core import Manifest
from tether.delivery.canary import AnalysisWiring, PodTemplateHashes, metrics_for, step_values
from tether.delivery.model import AnalysisArg, AnalysisStep, DeliveryError, read_delivery
from tether.errors import AnalysisError

TEMPLATE = """apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  args: [{name: service-name}, {name: stable-hash}, {name: latest-hash}]
  metrics:
    - name: success-rate
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          address: http://prometheus.example:9090
          query: rate(x{svc="{{args.service-name}}",h="{{args.latest-hash}}",s="{{args.stable-hash}}"}[1m])
"""


def delivery(args: list[dict[str, object]]) -> list[dict[str, object]]:
    step = {"analysis": {"templates": [{"templateName": "success-rate"}], "args": args}}
    return [{"target": {"name": "web"}, "canary": {"steps": [{"setWeight": 20}, step]}}]


ARGS: list[dict[str, object]] = [
    {"name": "service-name", "value": "web"},
    {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
    {"name": "latest-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
]


def test_the_model_reads_pod_template_hash_values() -> None:
    (spec,) = read_delivery(delivery(ARGS), "ns/web")
    step = spec.steps[1]
    assert isinstance(step, AnalysisStep)
    assert step.args == (
        AnalysisArg("service-name", "web"),
        AnalysisArg("stable-hash", "", "Stable"),
        AnalysisArg("latest-hash", "", "Latest"),
    )
    assert step.wants_hashes


FIELD_ARGS: list[dict[str, object]] = [
    {"name": "app", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "env", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['env']"}}},
    {
        "name": "team",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['example.com/team']"}},
    },
]
TARGET = {
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "labels": {"env": "prod"},
        "annotations": {"example.com/team": "payments"},
    }
}


def test_field_refs_are_read_from_the_target_deployments_metadata() -> None:
    (spec,) = read_delivery(delivery(FIELD_ARGS), "ns/web")
    step = spec.steps[1]
    assert isinstance(step, AnalysisStep) and step.wants_metadata and not step.wants_hashes
    assert step_values(step, PodTemplateHashes(), TARGET) == {
        "app": "web",
        "ns": "shop",
        "env": "prod",
        "team": "payments",
    }


def test_a_field_the_deployment_lacks_is_an_error_naming_the_argument_and_path() -> None:
    (spec,) = read_delivery(delivery(FIELD_ARGS[2:3]), "ns/web")
    step = spec.steps[1]
    assert isinstance(step, AnalysisStep)
    unlabelled = {"metadata": {"name": "web", "namespace": "shop"}}
    with pytest.raises(
        AnalysisError,
        match=r"argument 'env' \(metadata.labels\['env'\]\): Deployment web has no "
        r"metadata.labels\['env'\]",
    ):
        step_values(step, PodTemplateHashes(), unlabelled)


@pytest.mark.parametrize(
    "path", ["spec.replicas", "metadata.uid", "metadata.labels", "metadata.labels[env]"]
)
def test_another_field_path_is_refused_naming_the_app_the_step_and_what_is_read(
    path: str,
) -> None:
    args: list[dict[str, object]] = [{"name": "x", "valueFrom": {"fieldRef": {"fieldPath": path}}}]
    with pytest.raises(DeliveryError) as refused:
        read_delivery(delivery(args), "ns/web")
    message = str(refused.value)
    assert message.startswith("App ns/web: spec.delivery[0].canary.steps[1].args[0]: ")
    assert repr(path) in message
    assert "metadata.name, metadata.namespace, metadata.labels['KEY']" in message


def test_the_model_refuses_another_value_from() -> None:
    args: list[dict[str, object]] = [
        {"name": "x", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
    ]
    with pytest.raises(DeliveryError, match=r"steps\[1\]\.args\[0\]: valueFrom takes"):
        read_delivery(delivery(args), "ns/web")


def test_the_template_is_instantiated_with_the_rollouts_hashes() -> None:
    (spec,) = read_delivery(delivery(ARGS), "ns/web")
    step = spec.steps[1]
    assert isinstance(step, AnalysisStep)
    template = Manifest(yaml.safe_load(TEMPLATE))
    hashes = PodTemplateHashes(stable="6d4f8b9c7", latest="58c9f7d6b")
    (metric,) = asyncio.run(metrics_for(step, [template], AnalysisWiring(hashes=hashes)))
    assert isinstance(metric.provider, PrometheusProvider)
    assert metric.provider.query == 'rate(x{svc="web",h="58c9f7d6b",s="6d4f8b9c7"}[1m])'


def test_an_unknown_hash_is_an_error_naming_the_argument() -> None:
    step = AnalysisStep(("success-rate",), (AnalysisArg("latest-hash", "", "Latest"),))
    with pytest.raises(AnalysisError, match="'latest-hash' is the Latest pod-template-hash"):
        step_values(step, PodTemplateHashes(stable="6d4f8b9c7"))


def test_the_api_server_keeps_the_value_from_and_refuses_others(
    tether_crds: None, kubectl: Kubectl, namespace: str
) -> None:
    app: dict[str, Any] = {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "App",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"sourceRef": {"name": "repo"}, "path": "app", "delivery": delivery(ARGS)},
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(app))
    stored = kubectl.get("apps.tether.dev", "web", namespace)
    assert stored is not None
    step = stored["spec"]["delivery"][0]["canary"]["steps"][1]
    assert step["analysis"]["args"] == ARGS
    app["spec"]["delivery"] = delivery(FIELD_ARGS)
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(app))
    stored = kubectl.get("apps.tether.dev", "web", namespace)
    assert stored is not None
    step = stored["spec"]["delivery"][0]["canary"]["steps"][1]
    assert step["analysis"]["args"] == FIELD_ARGS
    app["spec"]["delivery"] = delivery(
        [{"name": "x", "valueFrom": {"podTemplateHashValue": "Canary"}}]
    )
    refused = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(app), check=False)
    assert refused.returncode != 0 and "podTemplateHashValue" in refused.stderr


def test_a_template_declaring_a_field_ref_itself_is_pointed_at_the_step() -> None:
    """``tether lint`` (analysis-template-invalid) reads templates as the agent does."""
    document = yaml.safe_load(TEMPLATE)
    document["spec"]["args"][0]["valueFrom"] = {"fieldRef": {"fieldPath": "metadata.name"}}
    with pytest.raises(AnalysisError, match=r"give the argument valueFrom\.fieldRef there"):
        read_template(document, "app/template.yaml")
