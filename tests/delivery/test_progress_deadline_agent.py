"""The progress deadline, with the agent as a process against the real control plane: a
blue-green preview whose pods never become Ready (the dev cluster's kwok Stages keep an
``-unready`` tag unready) no longer waits at step 0 forever. The agent is killed while it waits;
the next one goes on with the clock the status recorded, and once the deadline has passed the
rollout is aborted with a reason naming the preview Deployment and its Ready replicas; stable
never stopped serving and the preview is taken down. A canary whose candidate never becomes
available freezes at its deadline with ``onFailure: freeze``, until a person aborts it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.agent.conftest import apply_yaml, source_and_app, start_agent, tether_crds
from tests.analysis.prom import Prometheus
from tests.conftest import GitRepo, Kubectl
from tests.delivery import test_canary_agent as canary
from tests.delivery.agentkit import rollout, waited
from tests.delivery.signals import new_version, unready_image
from tests.delivery.test_bluegreen_agent import _active_hash, _hash_of, _image, _render

__all__ = ["start_agent", "tether_crds"]  # fixtures used here


def _delivery(deadline: str) -> str:
    return f"""  delivery:
    - target: {{kind: Deployment, name: web}}
      progressDeadline: {deadline}
      blueGreen:
        activeService: web
        previewService: web-preview
        scaleDownDelay: 2s
"""


def _unready_preview_pods(kubectl: Kubectl, namespace: str) -> int:
    pods = json.loads(
        kubectl(
            "get", "pods", "-n", namespace, "-l", "tether.dev/track=preview", "-o", "json"
        ).stdout
    )["items"]
    return len([p for p in pods if p["status"].get("phase") == "Running"])


def test_a_preview_never_ready_is_aborted_at_its_deadline_across_an_agent_restart(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    first = start_agent("agent-a")
    v1 = new_version()
    repo.write("app/web.yaml", _render(v1, prometheus)).commit("v1")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=_delivery("30s")))
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Promoted"
            and _hash_of(kubectl, namespace, "app=web,!tether.dev/track")
        ),
        "v1 deployed",
    )
    stable_hash = _hash_of(kubectl, namespace, "app=web,!tether.dev/track")

    broken = new_version()
    tag = unready_image("registry.example/web", broken).rsplit(":", 1)[1]
    repo.write("app/web.yaml", _render(broken, prometheus, tag))
    bad = repo.commit(broken)
    kubectl(
        "annotate", "gitsources.tether.dev/repo", "-n", namespace, "--overwrite",
        f"tether.dev/reconcile-requested-at={bad}",
    )  # fmt: skip
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            _unready_preview_pods(kubectl, namespace) == 2
            and rollout(kubectl, namespace).get("phase") == "Progressing"
        ),
        "the preview's pods running, never Ready",
    )
    before = rollout(kubectl, namespace)
    assert before["step"] == 0 and before["candidate"]["revision"] == bad
    clock = before["stepStartedAt"]
    assert clock

    # the agent dies while the preview waits; the next one keeps the recorded clock
    first.kill()
    start_agent("agent-b")
    active_seen: set[str | None] = set()

    def aborted() -> bool:
        active_seen.add(_active_hash(kubectl, namespace))
        return rollout(kubectl, namespace).get("phase") == "Aborted"

    waited(kubectl, namespace, tmp_path, aborted, "the rollout aborted at its deadline")
    after = rollout(kubectl, namespace)
    assert after["stepStartedAt"] == clock, "the restarted agent restarted the clock"
    assert "progress deadline of 30s passed" in after["message"], after
    assert "Deployment web-preview has 0 of 2 replicas Ready" in after["message"], after
    assert active_seen - {None} <= {stable_hash}, "the active Service left stable"
    assert _image(kubectl, namespace, "web") == f"registry.example/web:{v1}"
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: kubectl.get("deployment", "web-preview", namespace) is None,
        "the preview taken down",
    )


CANARY_STEPS = """          - setWeight: 50
          - pause: {{}}"""


def test_a_canary_never_available_freezes_at_its_deadline_and_a_person_aborts_it(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    start_agent("agent-a")
    v1 = canary.first_version(repo, kubectl, namespace, prometheus, CANARY_STEPS)
    broken = unready_image("registry.example/web", new_version()).rsplit(":", 1)[1]
    canary.new_commit(
        repo, kubectl, namespace, broken, CANARY_STEPS, on_failure="freeze", deadline="15s"
    )
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: rollout(kubectl, namespace).get("phase") == "Frozen",
        "the canary frozen at its deadline",
    )
    current = rollout(kubectl, namespace)
    assert "progress deadline of 15s passed at step 0 (setWeight 50)" in current["message"]
    assert "Deployment web-canary has 0 of 2 replicas Ready" in current["message"]
    # frozen: nothing rolled back, the candidate keeps its share beside stable
    assert (canary.deploy(kubectl, namespace, "web-canary") or {})["spec"]["replicas"] == 2
    assert canary.image(canary.deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    kubectl(
        "annotate", "apps.tether.dev/web", "-n", namespace, "--overwrite",
        f"tether.dev/rollout-action=abort@{broken}",
    )  # fmt: skip
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Aborted"
            and canary.deploy(kubectl, namespace, "web-canary") is None
        ),
        "the frozen canary aborted by hand",
    )


PROMOTED_STEPS = """          - setWeight: 100"""


def _quota(namespace: str, pods: int) -> str:
    return f"""apiVersion: v1
kind: ResourceQuota
metadata: {{name: pods, namespace: {namespace}}}
spec: {{hard: {{pods: "{pods}"}}}}
"""


def test_a_promotion_that_never_finishes_is_rolled_back_at_its_deadline_across_a_restart(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    """Every step passes, then the Git name cannot roll the candidate's template out: a pod
    quota leaves room for the candidate's 4 pods and 2 of the Git name's, never 4. The
    promotion is held to ``progressDeadline`` like a step (its clock kept by the next agent),
    then rolled back: the candidate goes and the rollback puts v1 back on ``web``."""
    first = start_agent("agent-a")
    v1 = canary.first_version(repo, kubectl, namespace, prometheus, PROMOTED_STEPS)
    apply_yaml(kubectl, _quota(namespace, 6))
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: ((kubectl.get("resourcequota", "pods", namespace) or {}).get("status") or {}).get(
            "hard"
        ),
        "the quota counted",
    )
    v2 = new_version()
    bad = canary.new_commit(repo, kubectl, namespace, v2, PROMOTED_STEPS, deadline="40s")

    def web_half_rolled() -> bool:
        web = canary.deploy(kubectl, namespace, "web") or {}
        return (
            rollout(kubectl, namespace).get("phase") == "Promoting"
            and canary.image(web) == f"registry.example/web:{v2}"
            and (web.get("status") or {}).get("readyReplicas") == 2
        )

    waited(kubectl, namespace, tmp_path, web_half_rolled, "web rolling v2, 2 of 4 Ready")
    promoting = rollout(kubectl, namespace)
    clock = promoting["stepStartedAt"]
    assert promoting["candidate"]["revision"] == bad and promoting["weight"] == 100
    assert (canary.deploy(kubectl, namespace, "web-canary") or {})["status"].get(
        "availableReplicas"
    ) == 4, "the candidate serves at full size while web rolls"

    # the agent dies while the promotion waits; the next one keeps the recorded clock
    first.kill()
    start_agent("agent-b")
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: rollout(kubectl, namespace).get("phase") == "Aborted",
        "the promotion rolled back at its deadline",
    )
    after = rollout(kubectl, namespace)
    assert after["stepStartedAt"] == clock, "the restarted agent restarted the clock"
    assert (
        "progress deadline of 40s passed at promotion: Deployment web has 2 of 4 replicas Ready"
        in after["message"]
    ), after
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            canary.deploy(kubectl, namespace, "web-canary") is None
            and canary.image(canary.deploy(kubectl, namespace, "web"))
            == f"registry.example/web:{v1}"
            and "RolledBack" in canary.events(kubectl, namespace)
        ),
        "the candidate gone and v1 back on web by the rollback",
    )
    decisions = canary.audit_rows(tmp_path / "audit.db", "decision")
    made = [d["decision"] for d in decisions if d["revision"] == bad]
    assert made[:3] == ["started", "promoting", "aborted"] and "quarantine" in made, made
