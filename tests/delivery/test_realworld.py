"""Delivery tried on the shapes of real public repositories (tests/delivery/realworld/README.md):
each directory is pushed to a real Gitea as a user's GitOps repository would be, the agent runs
as a process against the real control plane, and releases go out as its users would ship them
(a new image tag; a kustomization's ``images:``).

- Argo Rollouts' canary example (plain YAML, 5 replicas, an indefinite pause): promoted by hand
  with ``tether rollout promote``, then on by itself through its timed pauses to 100 %.
- rollouts-demo's blue-green (kustomize, Ingresses, a manual gate): the preview comes up beside
  the active version, ``tether rollout promote`` switches the active Service.
- podinfo (kustomize; its HorizontalPodAutoscaler left out, see the fixture) with a Gateway API
  HTTPRoute: a healthy release goes through to 100 % by the route's weights, judged by a
  Prometheus success-rate; a failing one is rolled back, with a revert pull request in Gitea.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import AgentProcess, apply_yaml, start_agent, tether_crds, wait_for
from tests.analysis.prom import Prometheus
from tests.conftest import Kubectl
from tests.delivery import gateway
from tests.delivery.agentkit import ROLLOUT_TIMEOUT
from tests.delivery.conftest import gateway_api
from tests.delivery.signals import MetricsApp, error_ratio, new_version
from tests.delivery.test_rollback_agent import (
    forge_token,
    gitea_repo,
    hermetic_git,
    own_gitea,
    tether_cli,
)
from tests.delivery.test_rollback_canary import source_and_app
from tests.forge.conftest import ForgeRepo
from tether.audit import AuditStore
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.gitea import LocalGitea

__all__ = [  # fixtures used here
    "gateway_api",
    "gitea_repo",
    "hermetic_git",
    "own_gitea",
    "start_agent",
    "tether_crds",
]

REALWORLD = Path(__file__).parent / "realworld"


def fixture_files(directory: str, **replace: str) -> dict[str, str]:
    """``realworld/<directory>``'s files as ``app/<name>``, each ``old`` text replaced by ``new``."""
    files = {}
    for path in sorted((REALWORLD / directory).iterdir()):
        text = path.read_text()
        for old, new in replace.items():
            text = text.replace(old, new)
        files[f"app/{path.name}"] = text
    return files


def with_tag(files: dict[str, str], tag: str) -> dict[str, str]:
    """A release: the kustomization's ``images:`` entry set to ``tag``."""
    kustomization = re.sub(r"newTag: .*", f"newTag: {tag}", files["app/kustomization.yaml"])
    return {**files, "app/kustomization.yaml": kustomization}


class Story:
    """One App in one namespace: its rollout of ``target``, the Deployments, the agent's logs."""

    def __init__(
        self, kubectl: Kubectl, namespace: str, tmp: Path, target: str, dev: DevCluster
    ) -> None:
        self.kubectl, self.namespace, self.tmp, self.target, self.dev = (
            kubectl,
            namespace,
            tmp,
            target,
            dev,
        )

    def rollout(self) -> dict[str, Any]:
        app = self.kubectl.get("apps.tether.dev", "web", self.namespace) or {}
        delivery = (app.get("status") or {}).get("delivery") or {}
        return dict(delivery.get(f"Deployment/{self.target}") or {})

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self.kubectl.get("deployment", name, self.namespace)

    def image(self, name: str) -> str:
        found = self.deployment(name) or {}
        containers = found.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
        return str((containers or [{}])[0].get("image", ""))

    def available(self, name: str) -> int:
        return int(((self.deployment(name) or {}).get("status") or {}).get("availableReplicas", 0))

    def cli(self, *args: str) -> str:
        done = tether_cli(self.dev, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def waited(self, check: Callable[[], Any], what: str) -> Any:
        try:
            return wait_for(check, ROLLOUT_TIMEOUT, what)
        except AssertionError as error:
            app = self.kubectl.get("apps.tether.dev", "web", self.namespace) or {}
            logs = "".join(
                p.read_text(errors="replace")[-4000:] for p in self.tmp.glob("agent-*.log")
            )
            listed = json.loads(
                self.kubectl("get", "events", "-n", self.namespace, "-o", "json").stdout
            )
            reasons = [f"{e.get('reason')}: {e.get('message', '')[:300]}" for e in listed["items"]]
            raise AssertionError(
                f"{error}\nstatus: {app.get('status')}\nevents: {reasons[-15:]}\n{logs}"
            ) from None

    def kept(self, revision: str) -> Callable[[], bool]:
        """Whether the agent's audit store keeps ``revision``'s render as the last good one
        (what a rollback puts back)."""

        def check() -> bool:
            audit = self.tmp / "audit.db"
            if not audit.exists():
                return False
            with AuditStore(str(audit)) as store:
                found = store.last_good_render(f"{self.namespace}.web")
            return found is not None and found.revision.commit == revision

        return check

    def phase_is(self, phase: str, revision: str) -> Callable[[], bool]:
        def check() -> bool:
            current = self.rollout()
            candidate = (current.get("candidate") or {}).get("revision")
            stable = (current.get("stable") or {}).get("revision")
            return current.get("phase") == phase and revision in (candidate, stable)

        return check


def start(
    kubectl: Kubectl,
    namespace: str,
    gitea: LocalGitea,
    repo: ForgeRepo,
    files: dict[str, str],
    delivery: str,
    agent: Callable[..., AgentProcess],
) -> str:
    """The first release in Git, the App applied, the agent started: the commit."""
    forge_token(kubectl, namespace, gitea)
    commit = repo.commit(files, "first release")
    repo.push()
    apply_yaml(kubectl, source_and_app(namespace, gitea, repo, delivery))
    agent("agent-a")
    return commit


ARGO_CANARY = """  delivery:
    - target: {kind: Deployment, name: rollout-canary}
      canary:
        steps:
          - setWeight: 20
          - pause: {}
          - setWeight: 40
          - pause: {duration: 2s}
          - setWeight: 60
          - pause: {duration: 1s}
          - setWeight: 80
          - pause: {duration: 1s}
"""


def test_argo_rollouts_canary_example_waits_for_a_person_then_goes_to_100_percent(
    own_gitea: LocalGitea,
    gitea_repo: ForgeRepo,
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
) -> None:
    story = Story(kubectl, namespace, tmp_path, "rollout-canary", dev_cluster)
    files = {
        k: v
        for k, v in fixture_files("argo-rollouts-canary").items()
        if k.endswith("rollout-canary.yaml")
    }
    blue = start(kubectl, namespace, own_gitea, gitea_repo, files, ARGO_CANARY, start_agent)
    story.waited(story.phase_is("Promoted", blue), "blue deployed")
    wait_for(lambda: story.available("rollout-canary") == 5, 120, "5 blue replicas")

    yellow = gitea_repo.commit(
        {k: v.replace(":blue", ":yellow") for k, v in files.items()}, "yellow"
    )
    gitea_repo.push()
    story.waited(story.phase_is("Paused", yellow), "the canary paused at 20 %")
    assert story.rollout()["weight"] == 20
    wait_for(
        lambda: (
            (story.deployment("rollout-canary-canary") or {}).get("spec", {}).get("replicas") == 1
        ),
        60,
        "one of five replicas on the canary",
    )
    assert story.image("rollout-canary") == "argoproj/rollouts-demo:blue"
    assert story.image("rollout-canary-canary") == "argoproj/rollouts-demo:yellow"

    story.cli("rollout", "promote", "web", "-n", namespace, "--reason", "looked at the dashboard")
    story.waited(story.phase_is("Promoted", yellow), "the canary promoted")
    wait_for(
        lambda: (
            story.image("rollout-canary") == "argoproj/rollouts-demo:yellow"
            and story.available("rollout-canary") == 5
            and story.deployment("rollout-canary-canary") is None
        ),
        120,
        "yellow on all five replicas, the canary Deployment gone",
    )
    shown = story.cli("rollout", "status", "web", "-n", namespace)
    assert "Deployment/rollout-canary" in shown and "Promoted" in shown, shown


ROLLOUTS_DEMO_BLUE_GREEN = """  delivery:
    - target: {kind: Deployment, name: bluegreen-demo}
      blueGreen:
        activeService: bluegreen-demo
        previewService: bluegreen-demo-preview
        autoPromotionEnabled: false
        scaleDownDelay: 2s
"""


def selects(story: Story, service: str) -> dict[str, str]:
    found = story.kubectl.get("service", service, story.namespace) or {}
    return dict((found.get("spec") or {}).get("selector") or {})


def serving_hash(story: Story, name: str) -> str | None:
    """The pod-template-hash of ``name``'s newest ReplicaSet (the one at its template)."""
    listed = json.loads(
        story.kubectl("get", "replicasets", "-n", story.namespace, "-o", "json").stdout
    )
    owned = [
        rs
        for rs in listed["items"]
        if any(o.get("name") == name for o in rs["metadata"].get("ownerReferences") or [])
    ]
    newest = max(
        owned,
        key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
        default=None,
    )
    return newest["metadata"]["labels"]["pod-template-hash"] if newest else None


def test_rollouts_demo_blue_green_previews_then_switches_when_promoted(
    own_gitea: LocalGitea,
    gitea_repo: ForgeRepo,
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
) -> None:
    story = Story(kubectl, namespace, tmp_path, "bluegreen-demo", dev_cluster)
    files = fixture_files("rollouts-demo-bluegreen")
    blue = start(
        kubectl, namespace, own_gitea, gitea_repo, files, ROLLOUTS_DEMO_BLUE_GREEN, start_agent
    )
    story.waited(story.phase_is("Promoted", blue), "blue deployed")
    wait_for(lambda: story.available("bluegreen-demo") == 3, 120, "3 blue replicas")
    assert kubectl.get("ingress", "bluegreen-demo-preview", namespace) is not None

    green = gitea_repo.commit(with_tag(files, "green"), "green")
    gitea_repo.push()
    story.waited(story.phase_is("Paused", green), "the preview up, waiting for a person")
    wait_for(lambda: story.available("bluegreen-demo-preview") == 3, 120, "3 green previews")
    assert story.image("bluegreen-demo") == "argoproj/rollouts-demo:blue"
    assert story.image("bluegreen-demo-preview") == "argoproj/rollouts-demo:green"
    blue_hash = serving_hash(story, "bluegreen-demo")
    assert selects(story, "bluegreen-demo").get("pod-template-hash") == blue_hash
    assert selects(story, "bluegreen-demo-preview").get("tether.dev/track") == "preview"

    story.cli("rollout", "promote", "web", "-n", namespace, "--reason", "green looks fine")
    story.waited(story.phase_is("Promoted", green), "green promoted")
    wait_for(
        lambda: (
            story.image("bluegreen-demo") == "argoproj/rollouts-demo:green"
            and story.available("bluegreen-demo") == 3
            and story.deployment("bluegreen-demo-preview") is None
        ),
        120,
        "green on the active Deployment, the preview taken down",
    )
    # idle again: the active Service as Git wrote it, selecting green's pods only
    wait_for(
        lambda: selects(story, "bluegreen-demo") == {"app": "bluegreen-demo"},
        60,
        "the active Service back to Git's selector",
    )


@pytest.fixture
def podinfo_gateway(kubectl: Kubectl, namespace: str) -> Iterator[gateway.GatewayController]:
    """The tests' gateway controller accepting podinfo's route (tests/delivery/gateway.py): the
    dev cluster has none, and a route no controller answers is Degraded, so the App would never
    be Healthy and no render would be kept for a rollback."""
    yield from gateway.running(kubectl, namespace)


def podinfo_delivery(version: str) -> str:
    return f"""  delivery:
    - target: {{kind: Deployment, name: podinfo}}
      canary:
        trafficRouting:
          gatewayAPI: {{httpRoute: podinfo, stableService: podinfo-primary, canaryService: podinfo-canary}}
        steps:
          - setWeight: 20
          - analysis: {{templates: [{{templateName: success-rate}}], args: [{{name: version, value: "{version}"}}]}}
          - setWeight: 60
          - setWeight: 100
"""


def route_weights(story: Story) -> dict[str, int]:
    route = story.kubectl.get("httproute", "podinfo", story.namespace) or {}
    rules = (route.get("spec") or {}).get("rules") or [{}]
    return {ref["name"]: ref.get("weight", 1) for ref in rules[0].get("backendRefs") or []}


def test_podinfo_routed_by_an_httproute_promoted_then_a_failing_release_reverted(
    own_gitea: LocalGitea,
    gitea_repo: ForgeRepo,
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    start_agent: Callable[..., AgentProcess],
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    gateway_api: None,
    podinfo_gateway: gateway.GatewayController,
    tmp_path: Path,
) -> None:
    story = Story(kubectl, namespace, tmp_path, "podinfo", dev_cluster)
    files = fixture_files("podinfo", **{"http://prometheus.monitoring:9090": prometheus.url})
    v1 = new_version()
    first = start(
        kubectl,
        namespace,
        own_gitea,
        gitea_repo,
        with_tag(files, v1),
        podinfo_delivery(v1),
        start_agent,
    )
    story.waited(story.phase_is("Promoted", first), "v1 deployed")
    wait_for(lambda: story.available("podinfo") == 2, 120, "two replicas")
    story.waited(story.kept(first), "v1 kept as the last good render")

    def release(version: str, error_rate: float) -> str:
        metrics_app.serve(version, error_rate=error_rate)
        wait_for(lambda: prometheus.query(error_ratio(version, "10s")), 60, "in Prometheus")
        apply_yaml(
            kubectl, source_and_app(namespace, own_gitea, gitea_repo, podinfo_delivery(version))
        )
        commit = gitea_repo.commit(with_tag(files, version), version)
        gitea_repo.push()
        return commit

    # a healthy release: through the route's weights to 100 %
    v2 = new_version()
    good = release(v2, 0.0)
    weights_seen: list[dict[str, int]] = []

    def promoted() -> bool:
        current = story.rollout()
        if current.get("phase") == "Progressing":
            weights_seen.append(route_weights(story))
        assert current.get("phase") not in ("Aborted", "Inconclusive", "Frozen"), current
        return story.phase_is("Promoted", good)()

    story.waited(promoted, "v2 promoted")
    assert {"podinfo-primary": 80, "podinfo-canary": 20} in weights_seen, weights_seen
    wait_for(
        lambda: (
            story.image("podinfo") == f"ghcr.io/stefanprodan/podinfo:{v2}"
            and story.available("podinfo") == 2
            and story.deployment("podinfo-canary") is None
        ),
        120,
        "v2 on both replicas, the canary gone",
    )
    wait_for(
        lambda: route_weights(story) == {"podinfo-primary": 1},
        60,
        "the route as Git wrote it",
    )

    story.waited(story.kept(good), "v2 kept as the last good render")

    # a failing release: the analysis fails, stable comes back, a revert pull request opens
    v3 = new_version()
    bad = release(v3, 0.5)

    def reverted() -> dict[str, Any] | None:
        app = kubectl.get("apps.tether.dev", "web", namespace) or {}
        entries = (app.get("status") or {}).get("quarantine") or []
        return entries[0] if entries and entries[0].get("pullRequest") else None

    entry = story.waited(reverted, "the rollback and the revert pull request")
    assert entry["revision"] == bad and entry["stableRevision"] == good
    assert "success-rate" in entry["reason"]
    wait_for(
        lambda: (
            story.image("podinfo") == f"ghcr.io/stefanprodan/podinfo:{v2}"
            and story.available("podinfo") == 2
            and story.deployment("podinfo-canary") is None
            and route_weights(story) == {"podinfo-primary": 1}
        ),
        120,
        "v2 serving again on the route",
    )
    [pull] = gitea_repo.get("/pulls?state=all&limit=50").json()
    assert bad[:12] in pull["body"] and "success-rate" in pull["body"]
