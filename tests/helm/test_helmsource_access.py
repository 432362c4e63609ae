"""How a HelmSource reaches its repository, with a real agent process: credentials only from a
Secret in the HelmSource's own namespace, never over plain http unless the operator allows it
for loopback (the rules of a GitSource, decision 0013); and a chart pushed by the real
``helm push`` to a real OCI registry (``oci://``) installed through a HelmSource.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.conftest import (
    app_condition,
    app_ready,
    apply_yaml,
    platform_project,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.conftest import Kubectl
from tests.helm.charts import helm_package, hermetic_env, write_chart
from tests.helm.conftest import HelmRepository
from tests.helm.test_sync import unique_group
from tests.oci.conftest import USER, Registry, registry
from tether.errors import SourceError
from tether.source import FetchRules

__all__ = ["registry", "start_agent", "tether_crds"]  # fixtures used here


def chart_app(namespace: str, url: str, secret: str, extra: str = "") -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: HelmSource
metadata: {{name: charts, namespace: {namespace}}}
spec:
  url: {json.dumps(url)}
  interval: 2s
  secretRef: {{name: {secret}}}
{extra}---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{kind: HelmSource, name: charts}}
  chart:
    name: shop
    version: "^1"
    values: {{db: {{password: not-a-secret-here}}}}
  syncPolicy: {{prune: true, interval: 1h}}
  healthTimeout: 30s
"""


def login_secret(kubectl: Kubectl, namespace: str, name: str, user: str, password: str) -> None:
    kubectl(
        "create", "secret", "generic", name, "-n", namespace,
        f"--from-literal=username={user}", f"--from-literal=password={password}",
    )  # fmt: skip


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def not_ready_message(kubectl: Kubectl, namespace: str, text: str) -> str:
    condition = app_condition(kubectl, namespace, "web", "Ready") or {}
    message = str(condition.get("message", ""))
    return message if condition.get("status") == "False" and text in message else ""


def test_credentials_come_only_from_the_sources_namespace_and_never_over_plain_http(
    start_agent,
    namespace: str,
    other_namespace: str,
    kubectl: Kubectl,
    private_helm_repository: HelmRepository,
) -> None:
    repository = private_helm_repository
    repository.publish_shop("1.0.0", unique_group())
    password = repository.password
    # the Secret exists, but in another namespace: it is not read
    login_secret(kubectl, other_namespace, "repo-login", repository.user, password)
    project = platform_project(kubectl, namespace)
    apply_yaml(kubectl, chart_app(namespace, repository.url, "repo-login") + project)
    agent = start_agent("agent-a")

    message = wait_for(
        lambda: not_ready_message(kubectl, namespace, "not found"), 60, "the missing Secret"
    )
    assert f"Secret 'repo-login' (secretRef) not found in namespace {namespace}" in message

    login_secret(kubectl, namespace, "repo-login", repository.user, "not-it-0815")
    message = wait_for(
        lambda: not_ready_message(kubectl, namespace, "plain http"), 60, "the plain-http refusal"
    )
    assert "--allow-loopback-http-credentials" in message
    assert repository.requests == []  # no credential was sent anywhere
    agent.stop()

    agent = start_agent("agent-b", "--allow-loopback-http-credentials")
    message = wait_for(
        lambda: not_ready_message(kubectl, namespace, "HTTP 401"), 60, "the refused login"
    )
    assert f"refused the credentials from Secret {namespace}/repo-login (spec.secretRef)" in message
    assert "password file" not in message and "not-it-0815" not in message
    kubectl("delete", "secret", "repo-login", "-n", namespace)
    login_secret(kubectl, namespace, "repo-login", repository.user, password)
    wait_for(lambda: app_ready(kubectl, namespace), 90, "the chart of the private repository")
    assert "/charts/index.yaml" in repository.requests
    assert kubectl.get("deployment", "web-web", namespace) is not None
    assert password not in agent.log.read_text(errors="replace")
    source = kubectl.get("helmsources.tether.dev", "charts", namespace)
    assert password not in json.dumps(source)


def helm_push(helm: Path, package: Path, url: str, registry: Registry, scratch: Path) -> None:
    """``helm push`` (the real helm) of ``package`` to ``url`` over plain http with basic auth."""
    subprocess.run(
        [
            str(helm),
            "push",
            str(package),
            url,
            "--plain-http",
            "--username",
            USER,
            "--password",
            registry.password,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=hermetic_env(scratch),
    )


def test_a_chart_pushed_by_helm_to_an_oci_registry_installs_through_a_helm_source(
    start_agent, namespace: str, kubectl: Kubectl, registry: Registry, helm: Path, tmp_path: Path
) -> None:
    url = registry.ref(f"charts-{uuid.uuid4().hex[:8]}")
    package = helm_package(helm, write_chart(tmp_path / "src", "1.2.0", unique_group()), tmp_path)
    helm_push(helm, package, url, registry, tmp_path)
    kubectl(
        "create", "secret", "generic", "registry-login", "-n", namespace,
        f"--from-literal=username={USER}", f"--from-literal=password={registry.password}",
    )  # fmt: skip
    extra = "  insecure: true\n"
    project = platform_project(kubectl, namespace)
    apply_yaml(kubectl, chart_app(namespace, url, "registry-login", extra) + project)
    start_agent("agent-a", "--allow-loopback-http-credentials")

    wait_for(lambda: app_ready(kubectl, namespace), 90, "the chart from the registry")
    status = kubectl.get("apps.tether.dev", "web", namespace)["status"]
    assert status["chart"]["version"] == "1.2.0"
    assert status["chart"]["digest"].startswith("sha256:")
    assert status["lastAppliedRevision"] == status["chart"]["digest"]
    image = kubectl.get("deployment", "web-web", namespace)["spec"]["template"]["spec"]
    assert image["containers"][0]["image"] == "registry.example/shop:1.2.0"


@pytest.mark.parametrize(
    ("url", "credentials", "refusal"),
    [
        ("https://reader:pw@charts.example/", False, "the URL carries credentials"),
        ("http://charts.example/", True, "refusing to send credentials over plain http"),
        ("http://127.0.0.1:8080/charts", True, "--allow-loopback-http-credentials"),
        ("ftp://charts.example/", False, "is not an http(s) or oci:// URL"),
        ("/srv/charts", False, "is not an http(s) or oci:// URL"),
    ],
)
def test_a_tenants_repository_url_follows_the_git_source_rules(
    url: str, credentials: bool, refusal: str
) -> None:
    with pytest.raises(SourceError, match=re.escape(refusal)) as refused:
        FetchRules.tenant().check_http_repository(url, credentials, "HelmSource t/charts")
    assert "pw@" not in str(refused.value)


def test_what_a_tenants_repository_url_may_be() -> None:
    rules = FetchRules.tenant()
    rules.check_http_repository("https://charts.example/", True, "HelmSource t/charts")
    rules.check_http_repository("http://charts.example/", False, "HelmSource t/charts")
    rules.check_http_repository("oci://registry.example/charts", True, "HelmSource t/charts")
    loopback = FetchRules.tenant(loopback_http_credentials=True)
    loopback.check_http_repository("http://127.0.0.1:5000/charts", True, "HelmSource t/charts")
