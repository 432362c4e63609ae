"""``tether diff`` / ``tether sync`` of a delivery path: its AnalysisTemplates (read by an App's
rollout, never applied) are set aside with a note, where they used to fail the whole sync with
"the API server has no kind 'AnalysisTemplate'". A cluster serving the kind (Argo Rollouts
installed), or a render bringing its CRD, gets them applied like any object."""

from __future__ import annotations

import json

import yaml

from tests.conftest import Cli, GitRepo, Kubectl
from tether.core import Manifest
from tether.delivery.shaping import unserved_templates

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{operator: Exists}]
      containers: [{name: web, image: registry.example/web:1}]
"""
ARGO_TEMPLATE = """apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  metrics: [{name: pass, provider: {job: {spec: {template: {spec: {containers: []}}}}}}]
"""
TETHER_TEMPLATE = """apiVersion: tether.dev/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics: [{name: errors, provider: {prometheus: {address: "http://p:9090", query: "1"}}}]
"""


def delivery_path(repo: GitRepo) -> None:
    repo.write("app/web.yaml", DEPLOYMENT)
    repo.write("app/analysis.yaml", ARGO_TEMPLATE + "---\n" + TETHER_TEMPLATE)
    repo.commit("web with its analysis templates")


def test_diff_and_sync_set_the_templates_aside_and_say_so(
    cli: Cli, kubectl: Kubectl, namespace: str, repo: GitRepo
) -> None:
    delivery_path(repo)
    where = ("--source", str(repo.root), "--path", "app", "--app", "web", "-n", namespace)

    code, out, err = cli("diff", *where)
    assert code == 1, err  # differences: the Deployment is new
    assert "Deployment" in out and "AnalysisTemplate" not in out
    assert "not applied: AnalysisTemplate success-rate (app/analysis.yaml" in err
    assert "ClusterAnalysisTemplate error-rate" in err

    code, out, err = cli("diff", *where, "--output", "json")
    assert code == 1, err
    listed = json.loads(out)["notApplied"]
    assert {(e["kind"], e["name"]) for e in listed} == {
        ("AnalysisTemplate", "success-rate"),
        ("ClusterAnalysisTemplate", "error-rate"),
    }

    code, out, err = cli("sync", *where, "--timeout", "0")
    assert code == 0, err
    assert "not applied: AnalysisTemplate success-rate" in err
    assert kubectl.get("deployment", "web", namespace) is not None

    code, out, err = cli("diff", *where)
    assert code == 0, out + err
    assert "in sync" in out


def manifests(*texts: str) -> list[Manifest]:
    return [Manifest(yaml.safe_load(text)) for text in texts]


def test_a_served_kind_or_a_crd_in_the_render_keeps_the_template() -> None:
    deployment, argo, tether_template = manifests(DEPLOYMENT, ARGO_TEMPLATE, TETHER_TEMPLATE)
    kept, aside = unserved_templates([deployment, argo, tether_template], ["apps/v1/Deployment"])
    assert kept == [deployment] and aside == [argo, tether_template]

    served = ["apps/v1/Deployment", "argoproj.io/v1alpha1/AnalysisTemplate"]
    kept, aside = unserved_templates([deployment, argo, tether_template], served)
    assert kept == [deployment, argo] and aside == [tether_template]

    (crd,) = manifests(
        """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: analysistemplates.argoproj.io}
spec: {group: argoproj.io, names: {kind: AnalysisTemplate}}
"""
    )
    kept, aside = unserved_templates([crd, deployment, argo], [])
    assert kept == [crd, deployment, argo] and aside == []
