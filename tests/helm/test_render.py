"""Rendering charts with the real helm: values, capabilities, CRDs, hooks, errors, limits."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import Kubectl
from tests.helm.charts import CRD_YAML, write_chart
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load as load_connection
from tether.core.hooks import HookPhase, hook_phase
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import ensure_binary
from tether.errors import RenderError
from tether.reconcile.charts import cluster_capabilities
from tether.render import (
    Capabilities,
    Chart,
    RenderSettings,
    merge_values,
    read_patch,
    read_values,
    render_chart,
)

GROUP = "render.tests.tether.dev"
CAPS = Capabilities("v1.31.4", ("apps/v1", f"{GROUP}/v1", f"{GROUP}/v1/Widget"))


def chart_in(tmp_path: Path, **values: object) -> Chart:
    root = tmp_path / "repo"
    write_chart(root / "charts" / "shop", "1.0.0", GROUP, extra=True)
    return Chart(
        root / "charts" / "shop",
        "charts/shop",
        "web",
        "team-a",
        merge_values([{"db": {"password": "pw-123"}}, values]),
        CAPS,
        tree=root,
    )


def by_name(manifests: list, kind: str, name: str) -> dict:
    found = [m for m in manifests if m.kind == kind and m.ref.name == name]
    assert len(found) == 1, [str(m.ref) for m in manifests]
    return found[0]


def test_a_chart_renders_with_its_values_crds_and_hooks_and_without_tests(
    tmp_path: Path, helm: Path
) -> None:
    manifests = render_chart(chart_in(tmp_path, replicas=3), RenderSettings(helm=helm))
    kinds = sorted(f"{m.kind}/{m.ref.name}" for m in manifests)
    assert kinds == [
        "ConfigMap/web-capabilities",
        "ConfigMap/web-extra",
        "ConfigMap/web-installed",
        f"CustomResourceDefinition/widgets.{GROUP}",
        "Deployment/web-web",
        "Job/web-migrate",
        "Secret/web-db",
    ]
    deployment = by_name(manifests, "Deployment", "web-web")
    assert deployment.body["spec"]["replicas"] == 3
    assert str(deployment.source) == "charts/shop/templates/deployment.yaml"
    assert str(by_name(manifests, "CustomResourceDefinition", f"widgets.{GROUP}").source) == (
        "charts/shop/crds/widgets.yaml"
    )
    assert hook_phase(by_name(manifests, "Job", "web-migrate").body) is HookPhase.PRE
    assert hook_phase(by_name(manifests, "ConfigMap", "web-installed").body) is HookPhase.POST


def test_capabilities_and_release_namespace_reach_the_templates(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path)
    data = by_name(render_chart(chart, RenderSettings(helm=helm)), "ConfigMap", "web-capabilities")
    assert data.body["data"] == {
        "kubeVersion": "v1.31.4",
        "probe": f"{GROUP}/v1/Widget",
        "probeServed": "true",
        "releaseNamespace": "team-a",
    }
    absent = chart_in(tmp_path / "other", probe="absent.example.com/v1/Thing")
    data = by_name(render_chart(absent, RenderSettings(helm=helm)), "ConfigMap", "web-capabilities")
    assert data.body["data"]["probeServed"] == "false"


def test_capabilities_come_from_the_cluster_and_see_its_crds(
    tmp_path: Path, helm: Path, dev_cluster: DevCluster, kubectl: Kubectl
) -> None:
    group = "probe.tests.tether.dev"
    kubectl("apply", "-f", "-", stdin=CRD_YAML.format(group=group))
    kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=60s")

    async def discover() -> Capabilities:
        async with KubeClient(load_connection(dev_cluster.kubeconfig_path)) as client:
            return await cluster_capabilities(client)

    capabilities = asyncio.run(discover())
    server = kubectl("version", "-o", "json").stdout
    assert f'"gitVersion": "{capabilities.kube_version}"' in server
    assert f"{group}/v1/Widget" in capabilities.api_versions
    assert "apps/v1/Deployment" in capabilities.api_versions
    root = tmp_path / "repo"
    write_chart(root / "shop", "1.0.0", GROUP)
    values = {"db": {"password": "x"}, "probe": f"{group}/v1/Widget"}
    chart = Chart(root / "shop", "shop", "web", "default", values, capabilities, tree=root)
    data = by_name(render_chart(chart, RenderSettings(helm=helm)), "ConfigMap", "web-capabilities")
    assert data.body["data"]["probeServed"] == "true"
    assert data.body["data"]["kubeVersion"] == capabilities.kube_version


def test_a_missing_required_value_names_the_template_and_line(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path)
    chart = Chart(chart.path, chart.label, "web", "team-a", {}, CAPS, tree=chart.tree)
    with pytest.raises(RenderError) as failure:
        render_chart(chart, RenderSettings(helm=helm))
    message = str(failure.value)
    assert "chart charts/shop" in message
    assert "(charts/shop/templates/secret.yaml:9:" in message
    assert "db.password is required" in message
    assert str(tmp_path) not in message


def test_a_broken_template_names_its_file_and_line(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path)
    (chart.path / "templates" / "broken.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: {{ .Values.nope.deeper }\n"
    )
    with pytest.raises(RenderError) as failure:
        render_chart(chart, RenderSettings(helm=helm))
    assert "(charts/shop/templates/broken.yaml:6)" in str(failure.value)


def test_a_symlink_out_of_the_repository_is_refused_before_helm_runs(
    tmp_path: Path, helm: Path
) -> None:
    chart = chart_in(tmp_path)
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: from the agent's disk\n")
    os.symlink(outside, chart.path / "templates" / "leak.yaml")
    with pytest.raises(RenderError, match=r"templates/leak.yaml: symlink points outside"):
        render_chart(chart, RenderSettings(helm=helm))


def test_hooks_on_delete_or_rollback_only_are_refused(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path)
    (chart.path / "templates" / "cleanup.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cleanup\n  annotations:\n"
        "    helm.sh/hook: pre-delete\n"
    )
    with pytest.raises(RenderError) as failure:
        render_chart(chart, RenderSettings(helm=helm))
    assert "templates/cleanup.yaml: ConfigMap/cleanup is a Helm hook on pre-delete" in str(
        failure.value
    )


def test_rendering_is_hermetic_lookup_finds_nothing(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path)
    (chart.path / "templates" / "probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n"
        '  lookup: {{ lookup "v1" "Namespace" "" "default" | toJson | quote }}\n'
    )
    probe = by_name(render_chart(chart, RenderSettings(helm=helm)), "ConfigMap", "probe")
    assert probe.body["data"] == {"lookup": "{}"}


def test_a_chart_dependency_is_never_downloaded(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path)
    with (chart.path / "Chart.yaml").open("a") as file:
        file.write(
            "dependencies:\n  - name: redis\n    version: 1.0.0\n"
            "    repository: https://charts.example.com\n"
        )
    with pytest.raises(RenderError, match=r"missing in charts/ directory: redis"):
        render_chart(chart, RenderSettings(helm=helm))


def test_a_chart_over_the_time_limit_is_stopped(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path)
    (chart.path / "templates" / "slow.yaml").write_text(
        "{{- range $i := until 100000 }}{{- range $j := until 100000 }}"
        "{{- $x := add $i $j }}{{- end }}{{- end }}\n"
    )
    with pytest.raises(RenderError, match=r"did not finish within 2s"):
        render_chart(chart, RenderSettings(helm=helm, timeout=2))


def test_values_files_merge_like_helm_and_are_confined_to_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "values").mkdir(parents=True)
    (root / "values" / "base.yaml").write_text("a: {b: 1, c: [1, 2]}\nkeep: yes\n")
    (root / "values" / "prod.yaml").write_text("a: {b: 2, c: [3]}\nkeep: null\n")
    (tmp_path / "secret.yaml").write_text("x: 1\n")
    os.symlink(tmp_path / "secret.yaml", root / "values" / "leak.yaml")
    settings = RenderSettings()
    layers = [read_values(root, f"values/{n}.yaml", settings) for n in ("base", "prod")]
    assert merge_values(layers) == {"a": {"b": 2, "c": [3]}, "keep": None}
    assert layers[0]["keep"] is True  # YAML as Kubernetes reads it
    with pytest.raises(RenderError, match="leaves the repository"):
        read_values(root, "values/leak.yaml", settings)
    (root / "values" / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(RenderError, match=r"values/list.yaml:1: values must be a mapping"):
        read_values(root, "values/list.yaml", settings)


def test_post_render_patches_apply_to_the_output_and_keep_its_sources(
    tmp_path: Path, helm: Path
) -> None:
    kustomize = ensure_binary("kustomize")
    chart = chart_in(tmp_path)
    assert chart.tree is not None
    (chart.tree / "patches").mkdir()
    (chart.tree / "patches" / "web.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-web\n"
        "spec:\n  template:\n    spec:\n      nodeSelector:\n        pool: blue\n"
    )
    settings = RenderSettings(helm=helm, kustomize=kustomize)
    patch = read_patch(chart.tree, "patches/web.yaml", settings)
    manifests = render_chart(replace(chart, patches=(patch,)), settings)
    deployment = by_name(manifests, "Deployment", "web-web")
    assert deployment.body["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "blue"}
    assert deployment.body["spec"]["template"]["spec"]["containers"][0]["name"] == "web"
    assert str(deployment.source) == "charts/shop/templates/deployment.yaml"
    assert len(manifests) == 7

    (chart.tree / "patches" / "nothing.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: not-rendered\nspec: {}\n"
    )
    missing = read_patch(chart.tree, "patches/nothing.yaml", settings)
    with pytest.raises(RenderError, match=r"post-render.*not-rendered"):
        render_chart(replace(chart, patches=(missing,)), settings)
    (chart.tree / "patches" / "bare.yaml").write_text("spec: {replicas: 2}\n")
    with pytest.raises(RenderError, match=r"patches/bare.yaml:1: a patch names its target"):
        read_patch(chart.tree, "patches/bare.yaml", settings)
    with pytest.raises(RenderError, match=r"\.\.' segment|leaves the repository"):
        read_patch(chart.tree, "../outside.yaml", settings)


def test_values_are_checked_against_the_charts_values_schema(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path, replicas="three")
    (chart.path / "values.schema.json").write_text(
        '{"$schema": "https://json-schema.org/draft-07/schema#", "type": "object",'
        ' "properties": {"replicas": {"type": "integer", "minimum": 1}}}'
    )
    with pytest.raises(RenderError) as failure:
        render_chart(chart, RenderSettings(helm=helm))
    assert "values don't meet the specifications of the schema" in str(failure.value)
    assert "replicas" in str(failure.value)
    fixed = replace(chart, values=merge_values([chart.values, {"replicas": 2}]))
    assert by_name(render_chart(fixed, RenderSettings(helm=helm)), "Deployment", "web-web")


def test_a_chart_over_the_memory_limit_is_stopped(tmp_path: Path, helm: Path) -> None:
    chart = chart_in(tmp_path)
    (chart.path / "templates" / "huge.yaml").write_text(
        '{{- $s := "xxxxxxxxxxxxxxxx" }}{{- range until 40 }}{{- $s = print $s $s }}{{- end }}\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\ndata:\n  size: {{ len $s | quote }}\n"
    )
    settings = RenderSettings(helm=helm, timeout=120, helm_memory=1024**3)
    with pytest.raises(RenderError) as failure:
        render_chart(chart, settings)
    assert "ran out of its memory limit of 1024 MiB (RenderSettings.helm_memory)" in str(
        failure.value
    )
