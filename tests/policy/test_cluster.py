"""Schemas from our own control plane, and ``tether lint --cluster`` (server-side dry-run),
against the real local control plane of the test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.policy.conftest import Repo, Tether
from tether.cluster import kubeconfig
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.versions import KUBERNETES
from tether.governance import schemas
from tether.policy.schema import kind_key

pytestmark = pytest.mark.cluster

BROKEN = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-broken
spec:
  replica: 2
  selector:
    matchLabels: {app: web-broken}
  template:
    metadata:
      labels: {app: web-broken}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:0.1.0
          ports:
            - containerPort: "8080"
"""


@pytest.fixture(scope="module")
def real_schemas(dev_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("real-schemas")
    version, directory, kinds = schemas.update(kubeconfig.load(dev_cluster.kubeconfig_path), cache)
    assert version == KUBERNETES
    assert directory == cache / KUBERNETES
    assert kinds > 50
    return cache


def test_schemas_come_from_the_pinned_control_plane(real_schemas: Path) -> None:
    meta = json.loads((real_schemas / KUBERNETES / "meta.json").read_text())
    assert meta["kubernetesVersion"] == KUBERNETES
    assert "apis/apps/v1" in meta["groupVersions"] and "api/v1" in meta["groupVersions"]
    loaded = schemas.load(real_schemas, KUBERNETES)
    assert loaded is not None
    for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Secret"), ("batch/v1", "CronJob")):
        assert kind_key(api_version, kind) in loaded.kinds
    assert schemas.load(real_schemas, "v0.0.1") is None


def test_lint_with_the_real_schemas(real_schemas: Path, scaffolded: Repo, tether: Tether) -> None:
    args = (
        "lint",
        str(scaffolded.root),
        f"--schemas-dir={real_schemas}",
        "--kubernetes-version",
        KUBERNETES,
    )
    result = tether(*args, "-o", "json")
    assert result.code == 0, result.stdout
    assert json.loads(result.stdout)["checked"]["objects validated"] == 18
    scaffolded.write("apps/web/base/broken.yaml", BROKEN)
    kustomization = "apps/web/base/kustomization.yaml"
    scaffolded.write(kustomization, scaffolded.read(kustomization) + "  - broken.yaml\n")
    result = tether(*args, "-o", "json")
    assert result.code == 1
    found = {(f["line"], f["field"]) for f in json.loads(result.stdout)["findings"]}
    assert found == {
        (6, "spec.replica"),
        (17, "spec.template.spec.containers[0].ports[0].containerPort"),
    }


def test_update_schemas_from_the_cli(
    dev_cluster: DevCluster, scaffolded: Repo, tether: Tether, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    result = tether(
        "lint",
        str(scaffolded.root),
        "--update-schemas",
        f"--kubeconfig={dev_cluster.kubeconfig_path}",
        f"--schemas-dir={cache}",
        "--kubernetes-version",
        KUBERNETES,
    )
    assert result.code == 0, result.stdout + result.stderr
    assert (cache / KUBERNETES / "definitions.json").is_file()
    assert "objects validated" in result.stdout


def test_server_side_dry_run(dev_cluster: DevCluster, scaffolded: Repo, tether: Tether) -> None:
    args = (
        "lint",
        str(scaffolded.root),
        "--cluster",
        f"--kubeconfig={dev_cluster.kubeconfig_path}",
        "-o",
        "json",
    )
    # The app namespaces exist only in the repository: objects in them are notes, not errors.
    result = tether(*args)
    assert result.code == 0, result.stdout
    notes = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "dry-run-rejected"]
    assert notes and all(f["severity"] == "note" for f in notes)
    assert all("does not exist in the cluster yet" in f["message"] for f in notes)

    scaffolded.write(
        "platform/base/broken.yaml",
        BROKEN.replace("  replica: 2\n", "  replicas: -3\n").replace(
            "metadata:\n  name: web-broken\n",
            "metadata:\n  name: web-broken\n  namespace: default\n",
        )
        + "---\napiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n  namespace: default\n",
    )
    kustomization = "platform/base/kustomization.yaml"
    scaffolded.write(kustomization, scaffolded.read(kustomization) + "  - broken.yaml\n")
    result = tether(*args)
    assert result.code == 1
    errors = [f for f in json.loads(result.stdout)["findings"] if f["severity"] == "error"]
    assert {(f["path"], f["line"]) for f in errors} == {
        ("platform/base/broken.yaml", 1),
        ("platform/base/broken.yaml", 20),
    }
    messages = " ".join(f["message"] for f in errors)
    assert "Gadget" in messages and "web-broken" in messages
