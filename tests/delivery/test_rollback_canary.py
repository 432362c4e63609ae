"""A canary whose error rate rises fails its analysis and is rolled back, with Git kept truthful:
the agent as a process, the real control plane, a real Prometheus judging the canary, a real
Gitea holding the repository and the revert.

The test sees all of: stable restored; the bad commit quarantined while auto-sync stays on; a
revert pull request open in Gitea with the analysis evidence; a failing commit status on the bad
commit. Merging the pull request through Gitea's API lifts the quarantine, and nothing is
redeployed that should not be.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agent.conftest import AgentProcess, apply_yaml, start_agent, tether_crds, wait_for  # noqa: F401  (fixtures)
from tests.analysis.prom import Prometheus
from tests.conftest import Kubectl
from tests.delivery import test_canary_agent as canary
from tests.delivery.signals import MetricsApp, new_version
from tests.delivery.test_rollback_agent import forge_token, gitea_repo, hermetic_git, own_gitea  # noqa: F401
from tests.forge.conftest import ForgeRepo
from tether.audit import AuditStore
from tether.devcluster.gitea import LocalGitea

TIMEOUT = 240.0


def source_and_app(namespace: str, gitea: LocalGitea, repo: ForgeRepo, delivery: str) -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: repo, namespace: {namespace}}}
spec:
  url: {gitea.url}/{repo.ref}.git
  interval: 2s
  forge: {{kind: gitea, secretRef: {{name: forge-token}}}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{name: repo}}
  path: app
  syncPolicy: {{prune: true, interval: 5s}}
  healthTimeout: 60s
{delivery}"""


def quarantine(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    return list((app.get("status") or {}).get("quarantine") or [])


def revision_of(deployment: dict[str, Any]) -> str:
    """The Deployment's rollout revision: a new pod template would make a new one."""
    return str(deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"])


def waited(kubectl: Kubectl, namespace: str, tmp: Path, check: Any, what: str) -> Any:
    """``wait_for``, saying where the App stood and what the agent logged on a timeout."""
    try:
        return wait_for(check, TIMEOUT, what)
    except AssertionError as error:
        status = (kubectl.get("apps.tether.dev", "web", namespace) or {}).get("status")
        logs = "".join(p.read_text(errors="replace")[-3000:] for p in tmp.glob("agent-*.log"))
        listed = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
        reasons = [f"{e.get('reason')}: {e.get('message', '')[:300]}" for e in listed["items"]]
        raise AssertionError(f"{error}\nstatus: {status}\nevents: {reasons}\n{logs}") from None


def test_a_failing_canary_is_rolled_back_quarantined_reverted_and_lifted_by_the_merge(
    own_gitea: LocalGitea,  # noqa: F811
    gitea_repo: ForgeRepo,  # noqa: F811
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
        {
            "app/web.yaml": canary.deployment(v1),
            "app/template.yaml": canary.error_rate_template(prometheus),
        },
        "web v1",
    )
    repo.push()
    apply_yaml(
        kubectl,
        source_and_app(namespace, own_gitea, repo, canary.delivery(v1, canary.STEPS)),
    )
    start_agent("agent-a")
    audit = tmp_path / "audit.db"

    def v1_serves_and_is_kept() -> bool:
        web = canary.deploy(kubectl, namespace, "web") or {}
        if canary.rollout(kubectl, namespace).get("phase") != "Promoted":
            return False
        if (web.get("status") or {}).get("availableReplicas") != 4:
            return False
        with AuditStore(str(audit)) as store:
            kept = store.last_good_render(f"{namespace}.web")
        return kept is not None and kept.revision.commit == good

    wait_for(v1_serves_and_is_kept, TIMEOUT, "v1 serving and kept as the last good render")

    v2 = new_version()
    canary.serving(metrics_app, prometheus, v2, 0.5)  # half of v2's requests fail
    apply_yaml(  # the analysis asks about v2 (v1's template args had no traffic to judge)
        kubectl,
        source_and_app(namespace, own_gitea, repo, canary.delivery(v2, canary.STEPS)),
    )
    bad = repo.commit({"app/web.yaml": canary.deployment(v2)}, "web v2")
    repo.push()

    def reverted() -> dict[str, Any] | None:
        entries = quarantine(kubectl, namespace)
        return entries[0] if entries and entries[0].get("pullRequest") else None

    entry = waited(kubectl, namespace, tmp_path, reverted, "the rollback and the revert")
    assert canary.rollout(kubectl, namespace)["phase"] in ("Aborted", "Promoted")
    # stable restored: the Git name serves v1, the candidate is gone
    assert canary.image(canary.deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    wait_for(lambda: canary.deploy(kubectl, namespace, "web-canary") is None, 60, "canary gone")
    # quarantined, auto-sync on
    assert entry["revision"] == bad and entry["stableRevision"] == good
    assert entry["by"] == "agent/agent-a" and "error-rate" in entry["reason"]
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    assert (app["spec"].get("syncPolicy") or {}).get("automated", True) is True
    # the revert pull request, with the evidence, and the failing commit status
    pulls = repo.get("/pulls?state=all&limit=50").json()
    [pull] = pulls
    assert pull["number"] == entry["pullRequest"]["number"]
    assert bad[:12] in pull["body"] and "error-rate" in pull["body"]
    statuses = repo.get(f"/commits/{bad}/statuses").json()
    assert [s["status"] for s in statuses if s["context"] == "tether/delivery"] == ["failure"]
    served = canary.deploy(kubectl, namespace, "web") or {}

    # the revert merged through Gitea's API: the quarantine lifts, nothing is redeployed
    repo.merge(pull["number"])
    wait_for(lambda: not quarantine(kubectl, namespace), TIMEOUT, "the quarantine to lift")
    wait_for(
        lambda: canary.rollout(kubectl, namespace).get("phase") == "Promoted",
        TIMEOUT,
        "the rollout idle on stable",
    )
    web = canary.deploy(kubectl, namespace, "web") or {}
    assert canary.image(web) == f"registry.example/web:{v1}"
    # not rolled out again: the same pod template, the same ReplicaSet revision serving
    assert web["spec"]["template"] == served["spec"]["template"]
    assert revision_of(web) == revision_of(served)
    assert canary.deploy(kubectl, namespace, "web-canary") is None
    decisions = canary.audit_rows(audit, "decision")
    made = [d["decision"] for d in decisions]
    for expected in ("aborted", "rollback", "quarantine", "commit-status", "revert-opened",
                     "quarantine-lifted"):  # fmt: skip
        assert expected in made, made
    assert "RolledBack" in canary.events(kubectl, namespace)
