"""The issue's chart scenario from an OCI registry with auth, through the agent: the test chart
(a CRD, a Deployment, a Secret from a SOPS-encrypted values file, pre- and post-install hooks)
pushed by the real ``helm push`` to a real CNCF distribution registry with basic auth, followed
by an ``oci://`` HelmSource. It installs; ``tether diff`` of the same chart and values exits 0;
a new chart version in range is applied and the template it dropped is pruned; a hand edit is
healed; neither the decrypted value nor the registry password reaches the agent's log.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

from tests.agent.conftest import (
    app_ready,
    apply_yaml,
    platform_project,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.conftest import Cli, GitRepo, Kubectl
from tests.helm.charts import helm_package, write_chart
from tests.helm.test_helmsource_access import helm_push
from tests.helm.test_sync import PASSWORD, encrypted_values, unique_group
from tests.oci.conftest import USER, Registry, registry
from tether.secrets import generate_identity
from tether.source.oci import fetch_oci_chart

__all__ = ["registry", "start_agent", "tether_crds"]  # fixtures used here


def oci_chart_app(namespace: str, url: str, values_repo: str, extra: str = "") -> str:
    """An ``oci://`` HelmSource with a login, the GitSource of the encrypted values, the App."""
    return f"""apiVersion: tether.dev/v1alpha1
kind: HelmSource
metadata: {{name: charts, namespace: {namespace}}}
spec:
  url: {json.dumps(url)}
  interval: 2s
  insecure: true
  secretRef: {{name: registry-login}}
{extra}---
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
    version: "^1"
    valuesSourceRef: {{name: values}}
    valuesFiles: [values/prod.yaml]
  decryption: {{secretRef: {{name: age-keys}}}}
  syncPolicy: {{prune: true, selfHeal: true, interval: 1h}}
  healthTimeout: 60s
"""


def chart_status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    status = (kubectl.get("apps.tether.dev", "web", namespace) or {}).get("status") or {}
    return status.get("chart") or {}


def at_version(kubectl: Kubectl, namespace: str, version: str) -> bool:
    return app_ready(kubectl, namespace) and chart_status(kubectl, namespace).get("version") == (
        version
    )


def publish(
    helm: Path, registry: Registry, url: str, scratch: Path, version: str, **kw: Any
) -> None:
    chart = write_chart(scratch / "src" / version, version, kw.pop("group"), **kw)
    helm_push(helm, helm_package(helm, chart, scratch / "packages"), url, registry, scratch)


def keys_and_login(kubectl: Kubectl, namespace: str, registry: Registry, repo: GitRepo) -> str:
    """The age key and registry login Secrets, the encrypted values committed; the identity."""
    identity, recipient = generate_identity()
    kubectl(
        "create", "secret", "generic", "age-keys", "-n", namespace, f"--from-literal=key={identity}"
    )
    kubectl(
        "create", "secret", "generic", "registry-login", "-n", namespace,
        f"--from-literal=username={USER}", f"--from-literal=password={registry.password}",
    )  # fmt: skip
    encrypted_values(repo, recipient)
    repo.commit("the shop chart's encrypted values")
    return identity


def pushed_digest(registry: Registry, url: str, version: str) -> str:
    """The manifest digest the registry holds for the chart at ``version`` (as helm printed it)."""
    return fetch_oci_chart(f"{url}/shop", version, registry.auth).digest


def test_a_chart_from_an_oci_registry_with_auth_installs_diffs_clean_upgrades_prunes_and_heals(
    start_agent,
    cli: Cli,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    registry: Registry,
    helm: Path,
    tmp_path: Path,
) -> None:
    identity = keys_and_login(kubectl, namespace, registry, repo)
    key_file = tmp_path / "age.key"
    key_file.write_text(identity + "\n")
    url = registry.ref(f"charts-{uuid.uuid4().hex[:8]}")
    group = unique_group()
    publish(helm, registry, url, tmp_path, "1.0.0", group=group, extra=True)
    project = platform_project(kubectl, namespace)  # the chart has a CRD (docs/tenancy.md)
    apply_yaml(kubectl, oci_chart_app(namespace, url, str(repo.root)) + project)
    agent = start_agent("agent-a", "--allow-loopback-http-credentials")

    # 1. it installs: CRD first, the pre-install hook, the Secret from the encrypted values
    wait_for(lambda: at_version(kubectl, namespace, "1.0.0"), 120, "chart 1.0.0 from the registry")
    first = chart_status(kubectl, namespace)["digest"]
    assert first.startswith("sha256:")
    assert kubectl.get("crd", f"widgets.{group}", "") is not None
    secret = kubectl.get("secret", "web-db", namespace)
    assert base64.b64decode(secret["data"]["password"]).decode() == PASSWORD
    assert kubectl.get("job", "web-migrate", namespace)["status"].get("succeeded") == 1
    assert kubectl.get("configmap", "web-extra", namespace) is not None

    # 2. `tether diff` of the same chart, values and keys finds nothing to change
    code, out, err = cli(
        "diff", "--chart", f"{url}/shop", "--version", "^1", "--source", str(repo.root),
        "--values", "values/prod.yaml", "--age-key-file", str(key_file),
        "--repo-username", USER, "--repo-password-file", str(registry.password_file),
        "--plain-http", "--app", "web", "-n", namespace,
    )  # fmt: skip
    assert code == 0, out + err
    assert PASSWORD not in out + err and registry.password not in out + err

    # 3 and 4. a new version in range is applied; the template it dropped is pruned
    publish(helm, registry, url, tmp_path, "1.1.0", group=group)
    wait_for(lambda: at_version(kubectl, namespace, "1.1.0"), 120, "chart 1.1.0 picked up")
    assert chart_status(kubectl, namespace)["digest"] != first
    assert kubectl.get("configmap", "web-extra", namespace) is None
    container = kubectl.get("deployment", "web-web", namespace)["spec"]["template"]["spec"]
    assert container["containers"][0]["image"] == "registry.example/shop:1.1.0"

    # 5. a hand edit is healed
    kubectl("scale", "deployment", "web-web", "-n", namespace, "--replicas=5")
    wait_for(
        lambda: kubectl.get("deployment", "web-web", namespace)["spec"]["replicas"] == 2,
        60,
        "the hand edit to be healed",
    )
    log = agent.log.read_text(errors="replace")
    assert PASSWORD not in log and registry.password not in log


def test_an_oci_helm_source_with_an_allow_list_applies_only_the_digests_it_names(
    start_agent,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    registry: Registry,
    helm: Path,
    tmp_path: Path,
) -> None:
    keys_and_login(kubectl, namespace, registry, repo)
    url = registry.ref(f"charts-{uuid.uuid4().hex[:8]}")
    group = unique_group()
    publish(helm, registry, url, tmp_path, "1.0.0", group=group)
    allowed = pushed_digest(registry, url, "1.0.0")
    extra = f"  allowedDigests: [{allowed}]\n"
    project = platform_project(kubectl, namespace)
    apply_yaml(kubectl, oci_chart_app(namespace, url, str(repo.root), extra) + project)
    start_agent("agent-a", "--allow-loopback-http-credentials")
    wait_for(lambda: at_version(kubectl, namespace, "1.0.0"), 120, "the allowed chart applied")
    assert chart_status(kubectl, namespace)["digest"] == allowed

    publish(helm, registry, url, tmp_path, "1.1.0", group=group)  # in range, not allowed
    refused = pushed_digest(registry, url, "1.1.0")

    def refusal() -> str:
        source = kubectl.get("helmsources.tether.dev", "charts", namespace) or {}
        conditions = (source.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c["type"] == "Ready"), {})
        message = str(ready.get("message", ""))
        return message if ready.get("status") == "False" and refused in message else ""

    message = wait_for(refusal, 60, "the HelmSource to refuse the digest it does not allow")
    assert "not in the allowed digests" in message
    assert at_version(kubectl, namespace, "1.0.0")  # nothing else applied
    image = kubectl.get("deployment", "web-web", namespace)["spec"]["template"]["spec"]
    assert image["containers"][0]["image"] == "registry.example/shop:1.0.0"


def test_the_api_server_refuses_an_allow_list_on_a_helm_repository(
    kubectl: Kubectl, namespace: str, tether_crds
) -> None:
    source = f"""apiVersion: tether.dev/v1alpha1
kind: HelmSource
metadata: {{name: charts, namespace: {namespace}}}
spec:
  url: https://charts.example/
  allowedDigests: [sha256:{"a" * 64}]
"""
    result = kubectl("apply", "-f", "-", stdin=source, check=False)
    assert result.returncode != 0
    assert "applies to an oci:// registry only" in result.stderr
