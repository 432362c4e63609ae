"""Kustomizations: built by the real kustomize binary, with remote bases, paths leaving the
repository and plugins refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.render.helpers import configmap, render_error, write
from tether.core import SourceLocation
from tether.render import RenderSettings, render

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""


def base_and_overlay(repo: Path) -> None:
    write(repo, "base/deployment.yaml", DEPLOYMENT)
    write(repo, "base/service.yaml", SERVICE)
    write(repo, "base/kustomization.yaml", "resources:\n- deployment.yaml\n- service.yaml\n")
    write(
        repo,
        "overlays/prod/kustomization.yaml",
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namePrefix: prod-
        namespace: shop
        resources:
        - ../../base
        patches:
        - path: replicas.yaml
        """,
    )
    write(
        repo,
        "overlays/prod/replicas.yaml",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
        spec:
          replicas: 3
        """,
    )


SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
"""


def test_overlay_with_patch_and_name_prefix(repo: Path, with_kustomize: RenderSettings) -> None:
    base_and_overlay(repo)
    manifests = render(repo, "overlays/prod", with_kustomize)

    by_kind = {m.kind: m for m in manifests}
    assert sorted(by_kind) == ["Deployment", "Service"]
    deployment = by_kind["Deployment"]
    assert deployment.ref.name == "prod-web"
    assert deployment.ref.namespace == "shop"
    assert deployment.body["spec"]["replicas"] == 3
    label = "overlays/prod/kustomization.yaml (kustomize output)"
    assert all(m.source.path == label for m in manifests)
    # each object points at the line its document starts on in kustomize's output
    assert manifests[0].source == SourceLocation(label, 1)
    assert manifests[1].source.line > 1


def test_plain_directory_with_kustomized_subdirectory(
    repo: Path, with_kustomize: RenderSettings
) -> None:
    write(
        repo,
        "cluster/a-namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    )
    write(repo, "cluster/web/kustomization.yaml", "resources: [cm.yaml]\nnameSuffix: -x\n")
    write(repo, "cluster/web/cm.yaml", configmap("cm"))
    write(repo, "cluster/z.yaml", configmap("z"))
    manifests = render(repo, "cluster", with_kustomize)
    assert [(m.ref.name, m.source.path) for m in manifests] == [
        ("shop", "cluster/a-namespace.yaml"),
        ("cm-x", "cluster/web/kustomization.yaml (kustomize output)"),
        ("z", "cluster/z.yaml"),
    ]


def test_kustomize_yml_and_bare_kustomization_names(
    repo: Path, with_kustomize: RenderSettings
) -> None:
    write(repo, "a/kustomization.yml", "resources: [cm.yaml]\n")
    write(repo, "a/cm.yaml", configmap("a"))
    write(repo, "b/Kustomization", "resources: [cm.yaml]\n")
    write(repo, "b/cm.yaml", configmap("b"))
    assert [m.source.path for m in render(repo, ".", with_kustomize)] == [
        "a/kustomization.yml (kustomize output)",
        "b/Kustomization (kustomize output)",
    ]


@pytest.mark.parametrize(
    "remote",
    [
        "https://github.com/example/config//base?ref=v1.0.0",
        "github.com/example/config/base?ref=main",
        "git@github.com:example/config.git//base",
        "ssh://git@example.com/config.git",
        "git::https://example.com/config.git",
        "example.com/team/config/base",
    ],
)
def test_remote_resource_is_refused_before_kustomize_runs(
    repo: Path, tmp_path: Path, remote: str
) -> None:
    marker = tmp_path / "kustomize-ran"
    spy = write(tmp_path, "spy/kustomize", f"#!/bin/sh\ntouch {marker}\n")
    spy.chmod(spy.stat().st_mode | stat.S_IXUSR)
    write(repo, "app/cm.yaml", configmap("cm"))
    write(repo, "app/kustomization.yaml", f"resources:\n- cm.yaml\n- {remote}\n")

    message = render_error(repo, "app", RenderSettings(kustomize=spy))

    assert "app/kustomization.yaml:3: resources entry" in message
    assert "remote bases are disabled" in message
    assert "vendor the base into the repository" in message
    assert not marker.exists()


def test_remote_base_in_a_nested_kustomization_is_refused(
    repo: Path, with_kustomize: RenderSettings
) -> None:
    write(repo, "overlay/kustomization.yaml", "resources: [../base]\n")
    write(
        repo,
        "base/kustomization.yaml",
        "components:\n  - https://example.com/components/monitoring\n",
    )
    message = render_error(repo, "overlay", with_kustomize)
    assert "base/kustomization.yaml:2: components entry" in message
    assert "remote bases are disabled" in message


def test_resources_leaving_the_root_are_refused(
    repo: Path, tmp_path: Path, with_kustomize: RenderSettings
) -> None:
    write(tmp_path, "outside/kustomization.yaml", "resources: [cm.yaml]\n")
    write(tmp_path, "outside/cm.yaml", configmap("outside"))
    write(
        repo,
        "apps/web/kustomization.yaml",
        """
        resources:
        - ../../../outside
        - ../../../../../../../../etc
        """,
    )
    message = render_error(repo, "apps/web", with_kustomize)
    assert "2 problems" in message
    assert (
        "apps/web/kustomization.yaml:2: resources entry '../../../outside' leaves the repository"
        in message
    )
    assert str(tmp_path / "outside") in message
    assert "apps/web/kustomization.yaml:3: resources entry '../../../../../../../../etc'" in message
    assert "(it points to /etc)" in message


def test_symlinked_directory_leaving_the_root_is_refused(
    repo: Path, tmp_path: Path, with_kustomize: RenderSettings
) -> None:
    write(tmp_path, "outside/kustomization.yaml", "resources: [cm.yaml]\n")
    write(tmp_path, "outside/cm.yaml", configmap("outside"))
    write(repo, "app/kustomization.yaml", "resources: [vendor]\n")
    (repo / "app" / "vendor").symlink_to(tmp_path / "outside", target_is_directory=True)
    message = render_error(repo, "app", with_kustomize)
    assert "app/kustomization.yaml:1: resources entry 'vendor' leaves the repository" in message


def test_generator_file_symlinked_outside_is_refused(
    repo: Path, tmp_path: Path, with_kustomize: RenderSettings
) -> None:
    key = write(tmp_path, "home/.ssh/id_ed25519", "PRIVATE KEY\n")
    write(
        repo,
        "app/kustomization.yaml",
        """
        secretGenerator:
        - name: creds
          files:
          - id=key
        """,
    )
    (repo / "app" / "key").symlink_to(key)
    message = render_error(repo, "app", with_kustomize)
    assert "app/kustomization.yaml:4: secretGenerator entry 'key' leaves the repository" in message
    assert "PRIVATE KEY" not in message


def test_missing_resource_is_named_with_its_line(
    repo: Path, with_kustomize: RenderSettings
) -> None:
    write(repo, "app/kustomization.yaml", "resources:\n- cm.yaml\n- missing.yaml\n")
    write(repo, "app/cm.yaml", configmap("cm"))
    message = render_error(repo, "app", with_kustomize)
    assert "app/kustomization.yaml:3: resources entry 'missing.yaml' does not exist" in message


def test_kustomize_build_error_is_surfaced_with_the_path(
    repo: Path, with_kustomize: RenderSettings
) -> None:
    write(repo, "app/kustomization.yaml", "resources: [cm.yaml]\nnotAField: true\n")
    write(repo, "app/cm.yaml", configmap("cm"))
    message = render_error(repo, "app", with_kustomize)
    assert message.startswith("cannot render 'app': app/kustomization.yaml: kustomize build failed")
    assert "notAField" in message
    assert str(repo) not in message  # repository paths are shown relative to the root


def test_exec_generator_plugin_is_not_run(
    repo: Path, tmp_path: Path, with_kustomize: RenderSettings
) -> None:
    marker = tmp_path / "plugin-ran"
    plugin = write(repo, "app/plugin.sh", f"#!/bin/sh\ntouch {marker}\ncat\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    write(repo, "app/kustomization.yaml", "generators:\n- generator.yaml\n")
    write(
        repo,
        "app/generator.yaml",
        """
        apiVersion: example.com/v1
        kind: Generator
        metadata:
          name: gen
          annotations:
            config.kubernetes.io/function: |
              exec:
                path: ./plugin.sh
        """,
    )
    message = render_error(repo, "app", with_kustomize)
    assert "app/kustomization.yaml: kustomize build failed" in message
    assert "plugins disabled" in message
    assert not marker.exists()


def test_legacy_exec_plugin_from_plugin_home_is_not_run(
    repo: Path, tmp_path: Path, with_kustomize: RenderSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "plugin-ran"
    plugin_home = tmp_path / "plugins"
    plugin = write(
        plugin_home, "example.com/v1/generator/Generator", f"#!/bin/sh\ntouch {marker}\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("KUSTOMIZE_PLUGIN_HOME", str(plugin_home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    write(repo, "app/kustomization.yaml", "generators:\n- generator.yaml\n")
    write(
        repo,
        "app/generator.yaml",
        "apiVersion: example.com/v1\nkind: Generator\nmetadata:\n  name: gen\n",
    )
    message = render_error(repo, "app", with_kustomize)
    assert "kustomize build failed" in message
    assert not marker.exists()


def test_helm_charts_are_refused(repo: Path, with_kustomize: RenderSettings) -> None:
    write(
        repo,
        "app/kustomization.yaml",
        """
        helmCharts:
        - name: redis
          repo: https://charts.example.com
          version: 1.0.0
        """,
    )
    message = render_error(repo, "app", with_kustomize)
    assert "app/kustomization.yaml:1: helmCharts is not supported" in message


def test_inline_patches_are_not_taken_for_paths(repo: Path, with_kustomize: RenderSettings) -> None:
    write(repo, "app/cm.yaml", configmap("cm"))
    write(
        repo,
        "app/kustomization.yaml",
        """
        resources: [cm.yaml]
        patches:
        - patch: |-
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: cm
            data:
              key: patched
        patchesStrategicMerge:
        - |-
          apiVersion: v1
          kind: ConfigMap
          metadata:
            name: cm
          data:
            other: added
        """,
    )
    [manifest] = render(repo, "app", with_kustomize)
    assert manifest.body["data"] == {"key": "patched", "other": "added"}


def test_kustomize_output_is_validated_too(repo: Path, with_kustomize: RenderSettings) -> None:
    write(repo, "a/kustomization.yaml", "resources: [cm.yaml]\n")
    write(repo, "a/cm.yaml", configmap("same"))
    write(repo, "b/kustomization.yaml", "resources: [cm.yaml]\n")
    write(repo, "b/cm.yaml", configmap("same"))
    message = render_error(repo, ".", with_kustomize)
    assert "ConfigMap/same is defined twice" in message
    assert "a/kustomization.yaml (kustomize output):1" in message
    assert "b/kustomization.yaml (kustomize output):1" in message


def test_unusable_kustomize_binary(repo: Path, tmp_path: Path) -> None:
    write(repo, "app/kustomization.yaml", "resources: [cm.yaml]\n")
    write(repo, "app/cm.yaml", configmap("cm"))
    message = render_error(repo, "app", RenderSettings(kustomize=tmp_path / "no-such-binary"))
    assert "app/kustomization.yaml: kustomize binary" in message
    assert "cannot be run" in message


def test_kustomize_timeout(repo: Path, tmp_path: Path) -> None:
    slow = write(tmp_path, "slow/kustomize", "#!/bin/sh\nexec sleep 30\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    write(repo, "app/kustomization.yaml", "resources: []\n")
    message = render_error(repo, "app", RenderSettings(kustomize=slow, timeout=0.2))
    assert "app/kustomization.yaml: kustomize build did not finish within 0.2s" in message


def test_kustomize_runs_with_a_minimal_environment(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "env"
    spy = write(
        tmp_path,
        "spy/kustomize",
        f'#!/bin/sh\nenv > {dump}\necho "$@" >> {dump}\npwd >> {dump}\n',
    )
    spy.chmod(spy.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    write(repo, "app/kustomization.yaml", "resources: []\n")
    assert render(repo, "app", RenderSettings(kustomize=spy)) == []
    seen = dump.read_text()
    assert "do-not-leak" not in seen
    assert f"build --load-restrictor LoadRestrictionsRootOnly {repo / 'app'}" in seen
    assert "--enable" not in seen
    assert str(repo) not in seen.splitlines()[-1]  # working directory is a scratch directory
    assert os.environ["HOME"] not in [line.partition("=")[2] for line in seen.splitlines()]
