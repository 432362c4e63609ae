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
    repo.write("app/web.yaml", canary.deployment(broken))
    repo.commit(broken)
    frozen = canary.delivery(broken, CANARY_STEPS, on_failure="freeze").replace(
        "      onFailure: freeze\n", "      onFailure: freeze\n      progressDeadline: 15s\n"
    )
    assert "progressDeadline: 15s" in frozen
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=frozen))
    kubectl(
        "annotate", "gitsources.tether.dev/repo", "-n", namespace, "--overwrite",
        f"tether.dev/reconcile-requested-at={broken}",
    )  # fmt: skip
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
