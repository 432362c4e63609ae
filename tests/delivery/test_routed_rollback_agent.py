"""A canary routed by Gateway API fails its analysis and is rolled back, as an unrouted one is:
the agent as a process, the real control plane, a real Prometheus, a real Gitea, and the tests'
stand-in for a gateway controller (``gateway.GatewayController``) accepting the route.

With the route accepted the App becomes Healthy, so v1's render is kept as the last good one;
v2's canary gets traffic through the route while the stable Deployment keeps its full size
(decision 0028); its analysis fails; the test then sees the route back to all-stable, the
stable Service selecting Git's pods (v1's), the canary gone, the bad commit quarantined with
auto-sync on, a revert pull request with the evidence and a failing commit status; merging the
revert lifts the quarantine. Nothing in all this reads as drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import AgentProcess, apply_yaml, start_agent, tether_crds, wait_for  # noqa: F401  (fixtures)
from tests.analysis.prom import Prometheus
from tests.conftest import Kubectl
from tests.delivery import gateway, renders
from tests.delivery import test_canary_agent as canary
from tests.delivery.signals import MetricsApp, new_version
from tests.delivery.test_rollback_agent import forge_token, gitea_repo, hermetic_git, own_gitea  # noqa: F401
from tests.delivery.test_rollback_canary import quarantine, source_and_app, waited
from tests.forge.conftest import ForgeRepo
from tether.audit import AuditStore
from tether.devcluster.gitea import LocalGitea

TIMEOUT = 240.0
ROUTING = "{httpRoute: web, stableService: web-stable, canaryService: web-canary}"


def render(version: str) -> str:
    """v``version`` of the service: the Deployment, its stable and canary Services and the
    route through the platform's Gateway ``public`` (not in the App: the platform owns it)."""
    return renders.routed_render(version, tolerations=True)


def delivery(version: str) -> str:
    steps = canary.STEPS.format(version=version)
    return f"""  delivery:
    - target: {{kind: Deployment, name: web}}
      canary:
        trafficRouting:
          gatewayAPI: {ROUTING}
        steps:
{steps}
"""


@pytest.fixture
def gateway_controller(
    gateway_api: None, kubectl: Kubectl, namespace: str
) -> Iterator[gateway.GatewayController]:
    yield from gateway.running(kubectl, namespace)


def weights(kubectl: Kubectl, namespace: str) -> dict[str, int]:
    route = kubectl.get("httproute", "web", namespace) or {}
    rules = (route.get("spec") or {}).get("rules") or [{}]
    return {ref["name"]: ref.get("weight", 1) for ref in rules[0].get("backendRefs") or []}


def selector(kubectl: Kubectl, namespace: str, service: str) -> dict[str, str]:
    found = kubectl.get("service", service, namespace) or {}
    return dict((found.get("spec") or {}).get("selector") or {})


def ready_endpoints(kubectl: Kubectl, namespace: str, service: str) -> set[str]:
    listed = kubectl(
        "get", "endpointslices", "-n", namespace,
        "-l", f"kubernetes.io/service-name={service}", "-o", "json",
    )  # fmt: skip
    return {
        address
        for item in json.loads(listed.stdout)["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses") or []
    }


def pod_ips(kubectl: Kubectl, namespace: str, labels: str) -> set[str]:
    listed = kubectl("get", "pods", "-n", namespace, "-l", labels, "-o", "json")
    return {
        pod["status"]["podIP"]
        for pod in json.loads(listed.stdout)["items"]
        if pod["status"].get("podIP") and not pod["metadata"].get("deletionTimestamp")
    }


def test_a_routed_canary_that_fails_its_analysis_is_rolled_back_and_reverted(
    own_gitea: LocalGitea,  # noqa: F811
    gitea_repo: ForgeRepo,  # noqa: F811
    gateway_controller: gateway.GatewayController,
    kubectl: Kubectl,
    namespace: str,
    start_agent: Callable[..., AgentProcess],  # noqa: F811
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    repo = gitea_repo
    forge_token(kubectl, namespace, own_gitea)
    v1 = new_version()
    good = repo.commit(
        {"app/web.yaml": render(v1), "app/template.yaml": canary.error_rate_template(prometheus)},
        "web v1",
    )
    repo.push()
    apply_yaml(kubectl, source_and_app(namespace, own_gitea, repo, delivery(v1)))
    start_agent("agent-a")
    audit = tmp_path / "audit.db"

    def v1_kept() -> bool:
        if canary.rollout(kubectl, namespace).get("phase") != "Promoted":
            return False
        with AuditStore(str(audit)) as store:
            kept = store.last_good_render(f"{namespace}.web")
        return kept is not None and kept.revision.commit == good

    waited(kubectl, namespace, tmp_path, v1_kept, "the routed v1 Healthy and kept as good")
    assert gateway_controller.accepted >= 1
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    assert app["status"]["health"] == "Healthy", app["status"]

    v2 = new_version()
    canary.serving(metrics_app, prometheus, v2, 0.5)  # half of v2's requests fail
    apply_yaml(kubectl, source_and_app(namespace, own_gitea, repo, delivery(v2)))
    bad = repo.commit({"app/web.yaml": render(v2)}, "web v2")
    repo.push()

    seen: list[tuple[dict[str, int], int | None, int | None]] = []

    def reverted() -> dict[str, Any] | None:
        stable = canary.deploy(kubectl, namespace, "web") or {}
        candidate = canary.deploy(kubectl, namespace, "web-canary")
        seen.append(
            (
                weights(kubectl, namespace),
                (stable.get("spec") or {}).get("replicas"),
                (candidate or {}).get("spec", {}).get("replicas") if candidate else None,
            )
        )
        entries = quarantine(kubectl, namespace)
        return entries[0] if entries and entries[0].get("pullRequest") else None

    entry = waited(kubectl, namespace, tmp_path, reverted, "the routed canary's rollback")
    # while the canary ran, stable kept its four replicas and the canary had its weight's share
    assert {stable for _, stable, _ in seen} == {4}, seen
    assert {size for _, _, size in seen} <= {None, 0, 1}, seen
    assert any(w.get("web-canary") == 25 and w.get("web-stable") == 75 for w, _, _ in seen) or (
        1 in {size for _, _, size in seen}
    ), seen

    # stable restored: all traffic on the stable Service, which selects v1's pods only
    wait_for(lambda: canary.deploy(kubectl, namespace, "web-canary") is None, 60, "canary gone")
    assert weights(kubectl, namespace).get("web-canary", 0) == 0
    assert weights(kubectl, namespace)["web-stable"] > 0
    assert selector(kubectl, namespace, "web-stable") == {"app": "web"}  # as Git wrote it
    assert canary.image(canary.deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    v1_pods = pod_ips(kubectl, namespace, f"app=web,version={v1}")
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: len(v1_pods) == 4 and ready_endpoints(kubectl, namespace, "web-stable") == v1_pods,
        "the stable Service on v1's four pods",
    )
    # quarantined with auto-sync on, a revert pull request with the evidence, a failing status
    assert entry["revision"] == bad and entry["stableRevision"] == good
    assert "error-rate" in entry["reason"]
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    assert (app["spec"].get("syncPolicy") or {}).get("automated", True) is True
    [pull] = repo.get("/pulls?state=all&limit=50").json()
    assert pull["number"] == entry["pullRequest"]["number"]
    assert bad[:12] in pull["body"] and "error-rate" in pull["body"]
    statuses = repo.get(f"/commits/{bad}/statuses").json()
    assert [s["status"] for s in statuses if s["context"] == "tether/delivery"] == ["failure"]

    repo.merge(pull["number"])
    waited(kubectl, namespace, tmp_path, lambda: not quarantine(kubectl, namespace), "lifted")
    assert weights(kubectl, namespace).get("web-canary", 0) == 0
    assert canary.image(canary.deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    # the abort's pass and the rollback applied the Git name alike: no false drift in between
    reasons = canary.events(kubectl, namespace)
    assert "RolledBack" in reasons
    assert [r for r in reasons if r.startswith("Drift")] == []
