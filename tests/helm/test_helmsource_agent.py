"""Apps on a HelmSource, run by a real agent process against the real control plane and a real
Helm repository (aiohttp on loopback over ``helm package`` + ``helm repo index``).

The chart (tests/helm/charts.py) has a CRD, so the App deploys through a Project. Its values
come from a GitSource (``spec.chart.valuesSourceRef``) and inline ``values``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.agent.conftest import (
    app_condition,
    app_ready,
    apply_yaml,
    platform_project,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.conftest import Cli, GitRepo, Kubectl
from tests.helm.conftest import HelmRepository
from tests.helm.statuscheck import suspend, sync_states
from tests.helm.test_sync import unique_group
from tether.source import chart_cache_dir

__all__ = ["start_agent", "tether_crds"]  # fixtures used here

VALUES_PASSWORD = "helmsource-db-pw-51f0"


def helm_app(namespace: str, repository: str, values_repo: str, version: str = ">=1.0.0") -> str:
    """A HelmSource polled every 2s, the GitSource with the values, and App ``web`` on both."""
    return f"""apiVersion: tether.dev/v1alpha1
kind: HelmSource
metadata: {{name: charts, namespace: {namespace}}}
spec: {{url: {json.dumps(repository)}, interval: 2s}}
---
apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: values, namespace: {namespace}}}
spec: {{url: {json.dumps(values_repo)}, interval: 1h}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{kind: HelmSource, name: charts}}
  chart:
    name: shop
    version: {json.dumps(version)}
    valuesSourceRef: {{name: values}}
    valuesFiles: [values/prod.yaml]
    values: {{replicas: 2}}
  syncPolicy: {{prune: true, selfHeal: true, interval: 1h}}
  healthTimeout: 30s
"""


def app_status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return (kubectl.get("apps.tether.dev", "web", namespace) or {}).get("status") or {}


def helm_source_status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return (kubectl.get("helmsources.tether.dev", "charts", namespace) or {}).get("status") or {}


def applied_chart(kubectl: Kubectl, namespace: str, version: str) -> dict[str, str] | None:
    """The App's ``status.chart`` once it is Ready at ``version``."""
    chart = app_status(kubectl, namespace).get("chart") or {}
    ready = app_ready(kubectl, namespace)
    return chart if ready and chart.get("version") == version else None


def values_repository(repo: GitRepo) -> None:
    repo.write("values/prod.yaml", f"db:\n  password: {VALUES_PASSWORD}\n").commit("values")


def test_an_app_on_a_helm_source_installs_follows_new_versions_prunes_and_heals(
    start_agent,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    helm_repository: HelmRepository,
    cli: Cli,
    dev_cluster,
) -> None:
    group = unique_group()
    values_repository(repo)
    helm_repository.publish_shop("1.0.0", group, extra=True)
    project = platform_project(kubectl, namespace)
    apply_yaml(kubectl, helm_app(namespace, helm_repository.url, str(repo.root)) + project)
    agent = start_agent()

    first = wait_for(lambda: applied_chart(kubectl, namespace, "1.0.0"), 120, "chart 1.0.0")
    assert first["name"] == "shop" and first["digest"].startswith("sha256:")
    status = app_status(kubectl, namespace)
    assert status["lastAppliedRevision"] == first["digest"]
    assert kubectl.get("configmap", "web-extra", namespace) is not None
    deployment = kubectl.get("deployment", "web-web", namespace)
    assert deployment["spec"]["replicas"] == 2  # inline values
    artifact = helm_source_status(kubectl, namespace)["artifact"]
    assert (artifact["version"], artifact["digest"]) == ("1.0.0", first["digest"])
    assert artifact["fetchedAt"]

    helm_repository.publish_shop("2.0.0", group)  # drops templates/extra.yaml
    second = wait_for(lambda: applied_chart(kubectl, namespace, "2.0.0"), 120, "chart 2.0.0")
    assert second["digest"] != first["digest"]
    assert kubectl.get("configmap", "web-extra", namespace) is None  # pruned
    image = kubectl.get("deployment", "web-web", namespace)["spec"]["template"]["spec"]
    assert image["containers"][0]["image"] == "registry.example/shop:2.0.0"
    wait_for(
        lambda: helm_source_status(kubectl, namespace)["artifact"].get("version") == "2.0.0",
        30,
        "the HelmSource to show 2.0.0",
    )

    code, out, _ = cli("history", "web", "-n", namespace, "-o", "json")
    assert code == 0
    revisions = [
        (r["revision"]["ref"], r["revision"]["commit"])
        for r in json.loads(out)
        if r["result"] == "succeeded" and r["revision"]
    ]
    assert ("chart shop 2.0.0", second["digest"]) in revisions
    assert ("chart shop 1.0.0", first["digest"]) in revisions

    code, out, _ = cli(
        "get", "apps", "-n", namespace, "-o", "json", f"--kubeconfig={dev_cluster.kubeconfig_path}"
    )
    assert code == 0
    row = json.loads(out)[0]
    assert (row["chart"], row["revision"]) == ("shop 2.0.0", second["digest"])
    code, out, _ = cli("status", "web", "-n", namespace)
    assert code == 0
    assert f"chart shop 2.0.0 ({second['digest']})" in " ".join(out.split())
    # status renders the applied chart again (values from Git and inline) and compares: the
    # package comes from the agent's cache, or is fetched again by digest when the cache lost it
    states, error = sync_states(cli, namespace)
    assert error == "" and states["Deployment/web-web"] == "Synced"
    assert set(states.values()) == {"Synced"}, states
    for package in (chart_cache_dir() / "tenants" / namespace).glob("sha256-*.tgz"):
        package.unlink()
    assert sync_states(cli, namespace) == (states, "")

    kubectl("scale", "deployment", "web-web", "-n", namespace, "--replicas=5")
    wait_for(
        lambda: kubectl.get("deployment", "web-web", namespace)["spec"]["replicas"] == 2,
        60,
        "the hand edit to be healed",
    )

    helm_repository.stop_serving()  # the repository goes away: the App keeps what it applied
    source_ready = wait_for(
        lambda: (
            (c := app_condition(kubectl, namespace, "web", "SourceReady"))
            and c["status"] == "False"
            and c
        ),
        60,
        "the App to report its source unreachable",
    )
    assert helm_repository.url in source_ready["message"]
    assert kubectl.get("deployment", "web-web", namespace) is not None
    assert app_status(kubectl, namespace)["chart"] == second
    assert VALUES_PASSWORD not in agent.log.read_text(errors="replace")

    suspend(cli, kubectl, namespace)  # a hand edit the agent leaves: status tells it apart
    kubectl("scale", "deployment", "web-web", "-n", namespace, "--replicas=5")
    drifted, error = sync_states(cli, namespace)  # the repository is gone: from the cache
    assert error == ""
    assert drifted == {**states, "Deployment/web-web": "OutOfSync"}


def test_a_package_that_does_not_match_the_index_digest_applies_nothing(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl, helm_repository: HelmRepository
) -> None:
    group = unique_group()
    values_repository(repo)
    package = helm_repository.publish_shop("1.0.0", group)
    package.write_bytes(package.read_bytes() + b"\0")  # what is served differs from the index
    project = platform_project(kubectl, namespace)
    apply_yaml(kubectl, helm_app(namespace, helm_repository.url, str(repo.root)) + project)
    start_agent()

    ready = wait_for(
        lambda: (
            (c := app_condition(kubectl, namespace, "web", "Ready"))
            and c["reason"] == "SourceNotReady"
            and c
        ),
        90,
        "the App to report the digest mismatch",
    )
    assert "has SHA-256" in ready["message"] and "nothing was rendered" in ready["message"]
    assert helm_repository.url in ready["message"]
    source = helm_source_status(kubectl, namespace)
    condition = source["conditions"][0]
    assert (condition["type"], condition["status"]) == ("Ready", "False")
    assert "has SHA-256" in source["artifact"]["charts"][0]["error"]
    assert kubectl.get("crd", f"widgets.{group}", "") is None
    assert kubectl.get("deployment", "web-web", namespace) is None


def test_the_api_server_refuses_an_app_that_does_not_fit_its_source_kind(
    tether_crds: None, namespace: str, kubectl: Kubectl
) -> None:
    def refused(spec: str) -> str:
        text = (
            f"apiVersion: tether.dev/v1alpha1\nkind: App\n"
            f"metadata: {{name: bad, namespace: {namespace}}}\nspec: {spec}\n"
        )
        result = apply_yaml(kubectl, text, check=False)
        assert result.returncode != 0, spec
        return result.stderr

    assert "spec.chart.name" in refused("{sourceRef: {kind: HelmSource, name: charts}}")
    assert "spec.path is required" in refused("{sourceRef: {name: repo}}")
    assert "valuesSourceRef is for an App on a HelmSource" in refused(
        "{sourceRef: {name: repo}, path: charts/shop, chart: {valuesSourceRef: {name: v}}}"
    )
    assert "Unsupported value" in refused("{sourceRef: {kind: S3Bucket, name: b}, path: x}")
    accepted = apply_yaml(
        kubectl,
        f"apiVersion: tether.dev/v1alpha1\nkind: App\nmetadata: {{name: ok, namespace: "
        f"{namespace}}}\nspec: {{sourceRef: {{name: repo}}, path: deploy}}\n",
    )
    assert accepted.returncode == 0
    app = kubectl.get("apps.tether.dev", "ok", namespace)
    assert app["spec"]["sourceRef"]["kind"] == "GitSource"  # the default
