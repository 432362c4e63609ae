"""Apps on an OCISource, run by a real agent process against the real control plane and a real
CNCF distribution registry (tests/oci/conftest.py) with basic auth over plain http on loopback:
the artifact is pushed in Flux's format, the OCISource follows a semver range of tags, a new
tag is applied on the interval, and a digest outside ``allowedDigests`` is refused and applies
nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.agent.conftest import app_ready, apply_yaml, start_agent, tether_crds, wait_for
from tests.conftest import Cli, Kubectl
from tests.helm.statuscheck import suspend, sync_states
from tests.oci.conftest import USER, Registry, registry, repository, write_manifests
from tether.core.paths import cache_root
from tether.source.oci import push_artifact

__all__ = ["registry", "repository", "start_agent", "tether_crds"]  # fixtures used here


def oci_app(namespace: str, url: str, password: str, extra: str = "") -> str:
    return f"""apiVersion: v1
kind: Secret
metadata: {{name: registry-login, namespace: {namespace}}}
stringData: {{username: {USER}, password: {json.dumps(password)}}}
---
apiVersion: tether.dev/v1alpha1
kind: OCISource
metadata: {{name: manifests, namespace: {namespace}}}
spec:
  url: {json.dumps(url)}
  ref: {{semver: "^1"}}
  interval: 2s
  insecure: true
  secretRef: {{name: registry-login}}
{extra}---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{kind: OCISource, name: manifests}}
  syncPolicy: {{prune: true, interval: 1h}}
  healthTimeout: 30s
"""


def source_status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return (kubectl.get("ocisources.tether.dev", "manifests", namespace) or {}).get("status") or {}


def configmap_value(kubectl: Kubectl, namespace: str) -> str | None:
    configmap = kubectl.get("configmap", "web", namespace)
    return configmap["data"]["value"] if configmap else None


def test_an_app_on_an_oci_source_follows_new_tags_and_refuses_a_digest_not_allowed(
    start_agent,
    namespace: str,
    kubectl: Kubectl,
    registry: Registry,
    repository: str,
    tmp_path: Path,
    cli: Cli,
) -> None:
    url = registry.ref(repository)
    first = push_artifact(
        f"{url}:1.0.0", write_manifests(tmp_path / "one"), "git.example/web", "1", registry.auth
    )
    apply_yaml(kubectl, oci_app(namespace, url, registry.password))
    start_agent("agent-a", "--allow-loopback-http-credentials")

    wait_for(lambda: app_ready(kubectl, namespace, revision=first), 90, "the artifact applied")
    assert configmap_value(kubectl, namespace) == "one"
    artifact = source_status(kubectl, namespace)["artifact"]
    assert (artifact["version"], artifact["digest"]) == ("1.0.0", first)
    assert artifact["revision"] == f"1.0.0@{first}"

    second = push_artifact(
        f"{url}:1.1.0",
        write_manifests(tmp_path / "two", data="two"),
        "git.example/web",
        "2",
        registry.auth,
    )
    wait_for(lambda: app_ready(kubectl, namespace, revision=second), 60, "the new tag applied")
    assert configmap_value(kubectl, namespace) == "two"

    extra = f"  allowedDigests: [{second}]\n"
    apply_yaml(kubectl, oci_app(namespace, url, registry.password, extra))
    push_artifact(
        f"{url}:1.2.0",
        write_manifests(tmp_path / "three", data="three"),
        "git.example/web",
        "3",
        registry.auth,
    )
    ready = wait_for(
        lambda: (
            (c := source_status(kubectl, namespace).get("conditions", [{}])[0])
            and c.get("status") == "False"
            and c
        ),
        60,
        "the OCISource to refuse the digest",
    )
    assert "not in the allowed digests" in ready["message"]
    assert configmap_value(kubectl, namespace) == "two"  # nothing applied
    assert app_ready(kubectl, namespace, revision=second)
    assert registry.password not in json.dumps(source_status(kubectl, namespace))

    # status renders the applied artifact again by digest (from the agent's cache, or pulled
    # with the OCISource's Secret when the cache lost it) and compares object by object
    assert sync_states(cli, namespace) == ({"ConfigMap/web": "Synced"}, "")
    shutil.rmtree(cache_root() / "oci" / "tenants" / namespace / second.replace(":", "-"))
    assert sync_states(cli, namespace) == ({"ConfigMap/web": "Synced"}, "")
    suspend(cli, kubectl, namespace)
    kubectl("patch", "configmap", "web", "-n", namespace, "-p", '{"data":{"value":"by hand"}}')
    assert sync_states(cli, namespace) == ({"ConfigMap/web": "OutOfSync"}, "")
