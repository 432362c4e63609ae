"""A chart App (``spec.chart``) run by the agent on the real control plane: installed with its
SOPS-encrypted values decrypted by keys from a Kubernetes Secret, and a hand edit healed."""

from __future__ import annotations

import base64

from tests.agent.conftest import (
    app_ready,
    apply_yaml,
    platform_project,
    source_and_app,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.conftest import GitRepo, Kubectl
from tests.helm.charts import write_chart
from tests.helm.test_sync import PASSWORD, encrypted_values, unique_group
from tether.secrets import generate_identity

__all__ = ["start_agent", "tether_crds"]  # fixtures used here


def replicas(kubectl: Kubectl, namespace: str) -> int | None:
    deployment = kubectl.get("deployment", "web-web", namespace)
    return deployment["spec"]["replicas"] if deployment else None


def test_the_agent_installs_a_chart_app_and_heals_a_hand_edit(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    identity, recipient = generate_identity()
    kubectl(
        "create", "secret", "generic", "age-keys", "-n", namespace, f"--from-literal=key={identity}"
    )
    write_chart(repo.root / "charts" / "shop", "1.0.0", unique_group())
    encrypted_values(repo, recipient)
    repo.commit("the shop chart and its encrypted values")
    extra = (
        "  chart: {valuesFiles: [values/prod.yaml], values: {image: registry.example/shop:pinned}}\n"
        "  decryption: {secretRef: {name: age-keys}}\n" + platform_project(kubectl, namespace)
        # the chart has a CRD: cluster-wide rights need a Project (docs/tenancy.md)
    )
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "charts/shop", extra=extra))
    agent = start_agent()

    wait_for(lambda: app_ready(kubectl, namespace), 90, "the chart app to be ready")
    assert replicas(kubectl, namespace) == 2  # from the encrypted values file
    secret = kubectl.get("secret", "web-db", namespace)
    assert base64.b64decode(secret["data"]["password"]).decode() == PASSWORD
    container = kubectl.get("deployment", "web-web", namespace)["spec"]["template"]["spec"]
    assert container["containers"][0]["image"] == "registry.example/shop:pinned"  # inline values
    assert kubectl.get("job", "web-migrate", namespace)["status"].get("succeeded") == 1

    kubectl("scale", "deployment", "web-web", "-n", namespace, "--replicas=5")
    wait_for(lambda: replicas(kubectl, namespace) == 2, 60, "the hand edit to be healed")
    assert PASSWORD not in agent.log.read_text(errors="replace")
