"""The fast path of a failed analysis (decision 0032): the agent restores stable as soon as the
verdict is saved, before the pass that records the abort. Killed right there, the next replica
still records the abort once and rolls back once.

agent-a runs with the tests-only ``--test-crash-after-fast-restore``: right after it deleted
the candidate and scaled stable back to 4 replicas it kills itself (SIGKILL), before the
Aborted status, the Event, the audit rows and the pending rollback are written. agent-b, started
after, reads the failed verdict from the App's status and ends with exactly one abort decision,
one abort audit row, one revert pull request in a real Gitea, and v1 serving.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agent.conftest import AgentProcess, apply_yaml, start_agent, tether_crds, wait_for  # noqa: F401  (fixtures)
from tests.analysis.prom import Prometheus
from tests.conftest import Kubectl
from tests.delivery import test_canary_agent as canary
from tests.delivery.signals import MetricsApp
from tests.delivery.test_rollback_agent import forge_token, gitea_repo, hermetic_git, own_gitea  # noqa: F401
from tests.delivery.test_rollback_canary import quarantine, waited
from tests.delivery.test_rollback_crash import failing_v2, pending
from tests.forge.conftest import ForgeRepo
from tether.devcluster.gitea import LocalGitea


def test_an_agent_killed_right_after_the_fast_restore_leaves_one_abort_to_the_next_replica(
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
        "--test-crash-after-fast-restore",
    )  # fmt: skip

    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: first.process.poll() is not None,
        "agent-a to crash after its fast restore",
    )
    # restored by agent-a before it died: the candidate gone, stable sized for every replica
    assert canary.deploy(kubectl, namespace, "web-canary") is None
    web = canary.deploy(kubectl, namespace, "web") or {}
    assert web["spec"]["replicas"] == 4
    assert canary.image(web) == f"registry.example/web:{v1}"
    # ... and nothing of the abort recorded yet: only the failed verdict is in the status
    before = canary.rollout(kubectl, namespace)
    assert before["phase"] == "Progressing" and before["candidate"]["revision"] == bad
    assert before["analysis"]["phase"] == "Failed"
    assert not pending(kubectl, namespace)
    assert canary.audit_rows(audit, "abort") == []
    assert "aborted" not in [d["decision"] for d in canary.audit_rows(audit, "decision")]

    start_agent("agent-b")

    def reverted() -> dict[str, Any] | None:
        entries = quarantine(kubectl, namespace)
        done = entries and entries[0].get("pullRequest") and not pending(kubectl, namespace)
        return entries[0] if done else None

    entry = waited(kubectl, namespace, tmp_path, reverted, "agent-b's abort, rollback and revert")
    after = canary.rollout(kubectl, namespace)
    assert after["phase"] == "Aborted" and after["weight"] == 0
    assert canary.deploy(kubectl, namespace, "web-canary") is None
    web = canary.deploy(kubectl, namespace, "web") or {}
    assert canary.image(web) == f"registry.example/web:{v1}" and web["spec"]["replicas"] == 4
    assert entry["revision"] == bad and entry["stableRevision"] == good
    assert "error-rate" in entry["reason"]
    decisions = [d["decision"] for d in canary.audit_rows(audit, "decision")]
    assert decisions.count("aborted") == 1, decisions
    assert decisions.count("rollback") == 1, decisions
    assert decisions.count("revert-opened") == 1, decisions
    (abort,) = canary.audit_rows(audit, "abort")
    assert abort["revision"] == bad and any("Failed" in line for line in abort["evidence"])
    pulls = repo.get("/pulls?state=all&limit=50").json()
    assert [p["number"] for p in pulls] == [entry["pullRequest"]["number"]]
