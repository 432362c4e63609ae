"""A rollback a failed canary asks for survives the agent's crash: it is recorded in the App's
status (``status.pendingRollback``) with the Aborted rollout, and the next replica runs it once.

agent-a runs with the tests-only ``--test-hold-rollbacks``: it aborts the canary and records
the rollback but never runs it. It is killed with SIGKILL; agent-b, started after, restores
stable, quarantines the bad commit and opens exactly one revert pull request in a real Gitea.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agent.conftest import AgentProcess, apply_yaml, start_agent, tether_crds, wait_for  # noqa: F401  (fixtures)
from tests.analysis.prom import Prometheus
from tests.conftest import Kubectl
from tests.delivery import test_canary_agent as canary
from tests.delivery.signals import MetricsApp, new_version
from tests.delivery.test_rollback_agent import forge_token, gitea_repo, hermetic_git, own_gitea  # noqa: F401
from tests.delivery.test_rollback_canary import TIMEOUT, quarantine, source_and_app, waited
from tests.forge.conftest import ForgeRepo
from tether.audit import AuditStore
from tether.devcluster.gitea import LocalGitea


def pending(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    return (app.get("status") or {}).get("pendingRollback")


def failing_v2(
    forge: tuple[LocalGitea, ForgeRepo],
    kubectl: Kubectl,
    namespace: str,
    start_agent: Callable[..., AgentProcess],  # noqa: F811
    signals: tuple[MetricsApp, Prometheus],
    audit: Path,
    agent_flag: str,
) -> tuple[AgentProcess, str, str, str]:
    """A canary App on a Gitea repository: v1 served and kept as the last good render by an
    agent started with ``agent_flag``, then v2, half of whose requests fail, pushed.
    (agent-a, v1's tag, the good commit, the bad commit)."""
    (gitea, repo), (metrics_app, prometheus) = forge, signals
    forge_token(kubectl, namespace, gitea)
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
        source_and_app(namespace, gitea, repo, canary.delivery(v1, canary.STEPS)),
    )
    first = start_agent("agent-a", agent_flag)

    def v1_kept() -> bool:
        if canary.rollout(kubectl, namespace).get("phase") != "Promoted":
            return False
        with AuditStore(str(audit)) as store:
            kept = store.last_good_render(f"{namespace}.web")
        return kept is not None and kept.revision.commit == good

    wait_for(v1_kept, TIMEOUT, "v1 serving and kept as the last good render")

    v2 = new_version()
    canary.serving(metrics_app, prometheus, v2, 0.5)  # half of v2's requests fail
    apply_yaml(
        kubectl,
        source_and_app(namespace, gitea, repo, canary.delivery(v2, canary.STEPS)),
    )
    bad = repo.commit({"app/web.yaml": canary.deployment(v2)}, "web v2")
    repo.push()
    return first, v1, good, bad


def test_a_rollback_asked_for_by_a_failed_canary_is_run_by_the_next_replica_after_a_crash(
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
    audit = tmp_path / "audit.db"
    first, v1, good, bad = failing_v2(
        (own_gitea, repo), kubectl, namespace, start_agent, (metrics_app, prometheus), audit,
        "--test-hold-rollbacks",
    )  # fmt: skip

    asked = waited(
        kubectl, namespace, tmp_path, lambda: pending(kubectl, namespace), "the pending rollback"
    )
    assert canary.rollout(kubectl, namespace)["phase"] == "Aborted"
    assert asked["revision"] == bad and "error-rate" in asked["reason"]
    first.kill()  # between the abort and the rollback
    assert not quarantine(kubectl, namespace)  # agent-a did not roll back
    assert repo.get("/pulls?state=all&limit=50").json() == []

    start_agent("agent-b")

    def reverted() -> dict[str, Any] | None:
        entries = quarantine(kubectl, namespace)
        done = entries and entries[0].get("pullRequest") and not pending(kubectl, namespace)
        return entries[0] if done else None

    entry = waited(kubectl, namespace, tmp_path, reverted, "agent-b's rollback and revert")
    assert canary.image(canary.deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    assert entry["revision"] == bad and entry["stableRevision"] == good
    assert entry["by"] == "agent/agent-b" and "error-rate" in entry["reason"]
    pulls = repo.get("/pulls?state=all&limit=50").json()
    assert [p["number"] for p in pulls] == [entry["pullRequest"]["number"]]
    made = [d["decision"] for d in canary.audit_rows(audit, "decision")]
    assert made.count("rollback") == 1, made
    assert made.count("revert-opened") == 1, made
