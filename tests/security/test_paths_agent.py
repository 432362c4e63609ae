"""A Project's source paths in the real agent, on the real control plane, with real git,
kustomize and SOPS: an App of Project ``team-a`` (``sourcePaths: [apps/web/**]``) whose
kustomization takes the platform's encrypted Secret through a base is refused, naming the
kustomization, its line and the allowed paths, and the Secret is never decrypted into the
team's namespace; an App whose path has ``..`` is refused naming the App and the path. Once
the base is removed, the same App deploys ``apps/web`` itself (``apps/web/**`` includes it)."""

from __future__ import annotations

import json

import httpx

from tests.agent.conftest import app_condition, apply_yaml, source_and_app, wait_for
from tests.agent.test_agent import signed
from tests.conftest import GitRepo, Kubectl
from tests.security.platform_secret import store_age_key, write_platform_secret
from tests.sync.manifests import configmap

PASSWORD = "platform-db-password-agent-4242"


def project(namespace: str) -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: Project
metadata: {{name: team-a, namespace: {namespace}}}
spec: {{sourcePaths: ["apps/web/**"], destinations: ["{namespace}"]}}
"""


def escaping_app(namespace: str) -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: escape, namespace: {namespace}}}
spec:
  sourceRef: {{name: repo}}
  path: apps/web/../../platform/secrets
  decryption: {{secretRef: {{name: age-keys}}}}
  syncPolicy: {{prune: true, interval: 1h}}
"""


def refused(kubectl: Kubectl, namespace: str, name: str, text: str) -> dict | None:
    ready = app_condition(kubectl, namespace, name, "Ready") or {}
    return ready if ready.get("status") == "False" and text in ready.get("message", "") else None


def test_a_project_app_cannot_decrypt_the_platforms_secret(
    start_agent,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
) -> None:
    recipient = store_age_key(kubectl, namespace)
    write_platform_secret(repo, recipient, PASSWORD)
    repo.write("apps/web/cm.yaml", configmap("web"))
    repo.write(
        "apps/web/kustomization.yaml", "resources:\n  - cm.yaml\n  - ../../platform/secrets\n"
    )
    repo.commit("the web team borrows the platform's secrets")
    decryption = "  decryption: {secretRef: {name: age-keys}}\n  project: team-a\n"
    apply_yaml(
        kubectl,
        source_and_app(namespace, str(repo.root), path="apps/web", extra=decryption)
        + "---\n"
        + project(namespace)
        + "---\n"
        + escaping_app(namespace),
    )
    agent = start_agent()

    expected = (
        "apps/web/kustomization.yaml:3: resources entry '../../platform/secrets' points to "
        "platform/secrets, outside the paths "
    )
    ready = wait_for(lambda: refused(kubectl, namespace, "web", expected), 60, "the base refused")
    assert "team-a' may deploy from (apps/web/**)" in ready["message"]
    assert PASSWORD not in json.dumps(kubectl.get("apps.tether.dev", "web", namespace))
    ready = wait_for(
        lambda: refused(
            kubectl,
            namespace,
            "escape",
            "source path 'apps/web/../../platform/secrets' is refused: it has a '..' segment",
        ),
        60,
        "the '..' path refused",
    )
    assert "escape" in ready["message"]
    assert kubectl.get("secret", "platform-db", namespace) is None
    assert kubectl.get("configmap", "web", namespace) is None

    repo.write("apps/web/kustomization.yaml", "resources: [cm.yaml]\n").commit("comply")
    body = json.dumps({"url": str(repo.root)}).encode()
    httpx.post(f"{agent.url}/hooks/generic", content=body, headers=signed(body))
    wait_for(lambda: kubectl.get("configmap", "web", namespace), 60, "apps/web deployed")
    assert kubectl.get("secret", "platform-db", namespace) is None
    assert PASSWORD not in agent.log.read_text()
