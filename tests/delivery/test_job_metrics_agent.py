"""Canaries judged by a Kubernetes Job, driven by the agent run as a process against the real
control plane.

The AnalysisTemplate sits in Git next to the Deployment; its Job runs as the App's identity in
the App's namespace, labelled with the App, the rollout and the step. kwok plays the kubelet:
a Job's pod that kwok may schedule is marked Succeeded with exit code 0; a pod kept off kwok's
nodes (a node selector nothing matches) stays Pending until the test writes its status, as a
kubelet would, with the exit code the test wants.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.agent.conftest import apply_yaml, source_and_app, wait_for
from tests.analysis.test_job import UNSCHEDULABLE
from tests.conftest import Cli, GitRepo, Kubectl
from tests.delivery import renders
from tests.delivery.agentkit import ROLLOUT_TIMEOUT, rollout, waited
from tests.delivery.signals import new_version
from tests.delivery.test_canary_agent import (
    audit_rows,
    delivery,
    deploy,
    deployment,
    events,
    image,
    leader,
)
from tether.delivery.analysiscluster import APP_LABEL, JOB_NAME_LABEL, STEP_LABEL

STEPS = """          - setWeight: 25
          - analysis: {{templates: [{{templateName: smoke}}]}}
          - setWeight: 100"""


def smoke_template(pod_spec: dict[str, Any] | None = None) -> str:
    spec = {
        "backoffLimit": 0,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "smoke", "image": "registry.example/smoke:1"}],
                **(pod_spec or {}),
            }
        },
    }
    return f"""apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: smoke}}
spec:
  metrics:
    - name: smoke-test
      provider:
        job:
          metadata: {{labels: {{team: shop}}}}
          spec: {json.dumps(spec)}
"""


def rolled_out(
    repo: GitRepo, kubectl: Kubectl, namespace: str, template: str, extra: str = ""
) -> tuple[str, str]:
    """v1 in Git and deployed (no rollout: the first deploy), then v2 pushed: (v1, v2's commit)."""
    v1 = new_version()
    repo.write("app/web.yaml", deployment(v1)).write("app/template.yaml", template)
    repo.commit("v1")
    app = source_and_app(namespace, str(repo.root), "app", extra=extra + delivery(v1, STEPS))
    apply_yaml(kubectl, app)
    wait_for(
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Promoted"
            and (deploy(kubectl, namespace, "web") or {}).get("status", {}).get("availableReplicas")
            == 4
        ),
        ROLLOUT_TIMEOUT,
        "v1 to be deployed",
    )
    v2 = new_version()
    repo.write("app/web.yaml", deployment(v2))
    commit = repo.commit(v2)
    kubectl(
        "annotate", "gitsources.tether.dev/repo", "-n", namespace, "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )  # fmt: skip
    return v1, commit


def analysis_jobs(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    listed = kubectl("get", "jobs", "-n", namespace, "-l", APP_LABEL, "-o", "json").stdout
    return list(json.loads(listed)["items"])


def finish_pod(kubectl: Kubectl, namespace: str, job: str, exit_code: int) -> None:
    """Write the status of Job ``job``'s pod as a kubelet would: its container exited."""
    listed = kubectl("get", "pods", "-n", namespace, "-l", f"{JOB_NAME_LABEL}={job}", "-o", "json")
    pods = json.loads(listed.stdout)["items"]
    assert len(pods) == 1, pods
    now = "2026-11-28T02:00:00Z"
    terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                  "startedAt": now, "finishedAt": now}  # fmt: skip
    status = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": "smoke",
                "image": "registry.example/smoke:1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ],
    }
    kubectl(
        "patch", "pod", pods[0]["metadata"]["name"], "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip


def one_job(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    jobs = analysis_jobs(kubectl, namespace)
    assert len(jobs) <= 1, [j["metadata"]["name"] for j in jobs]
    return jobs[0] if jobs else None


def test_a_job_metric_that_passes_promotes_the_canary_and_its_job_is_deleted(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path
) -> None:
    start_agent("agent-a")
    _, commit = rolled_out(repo, kubectl, namespace, smoke_template())
    seen: list[dict[str, Any]] = []

    def promoted() -> bool:
        seen.extend(analysis_jobs(kubectl, namespace))
        current = rollout(kubectl, namespace)
        assert current.get("phase") not in ("Aborted", "Inconclusive"), current
        return current.get("phase") == "Promoted" and current["stable"]["revision"] == commit

    waited(kubectl, namespace, tmp_path, promoted, "the canary to be promoted")
    measured = [m for m in audit_rows(tmp_path / "audit.db", "measurement")]
    assert [m["value"]["exitCode"] for m in measured] == [0] and measured[0][
        "phase"
    ] == "Successful"
    wait_for(lambda: analysis_jobs(kubectl, namespace) == [], 60, "the Job deleted")
    if seen:  # the Job, when a look caught it: in the App's namespace, labelled with the step
        labels = seen[0]["metadata"]["labels"]
        assert labels[STEP_LABEL] == "1" and labels["team"] == "shop"
        assert seen[0]["metadata"]["namespace"] == namespace


def test_a_job_metric_that_fails_aborts_the_canary_and_rolls_back(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path
) -> None:
    start_agent("agent-a")
    v1, commit = rolled_out(
        repo, kubectl, namespace, smoke_template({"nodeSelector": UNSCHEDULABLE})
    )
    job = waited(kubectl, namespace, tmp_path, lambda: one_job(kubectl, namespace), "the Job")
    labels = job["metadata"]["labels"]
    assert labels[STEP_LABEL] == "1" and labels["team"] == "shop"
    finish_pod(kubectl, namespace, job["metadata"]["name"], exit_code=3)

    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: rollout(kubectl, namespace).get("phase") == "Aborted",
        "the canary to be aborted",
    )
    current = rollout(kubectl, namespace)
    assert current["candidate"]["revision"] == commit and "smoke" in current["message"]
    (abort,) = audit_rows(tmp_path / "audit.db", "abort")
    assert any("'exitCode': 3" in line for line in abort["evidence"]), abort["evidence"]
    wait_for(lambda: "RolledBack" in events(kubectl, namespace), 60, "the rollback")
    wait_for(lambda: deploy(kubectl, namespace, "web-canary") is None, 60, "the canary removed")
    assert image(deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    wait_for(lambda: analysis_jobs(kubectl, namespace) == [], 60, "the Job deleted")


def test_the_leader_killed_while_its_job_runs_and_the_new_leader_adopts_the_same_job(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path
) -> None:
    agents = {name: start_agent(name) for name in ("agent-a", "agent-b")}
    _, commit = rolled_out(
        repo, kubectl, namespace, smoke_template({"nodeSelector": UNSCHEDULABLE})
    )
    job = waited(kubectl, namespace, tmp_path, lambda: one_job(kubectl, namespace), "the Job")
    uid = job["metadata"]["uid"]
    killed = leader(kubectl, namespace)
    agents[killed].kill()
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: leader(kubectl, namespace) not in ("", killed),
        "the other replica to lead",
    )
    # the new leader goes on with the same Job: a second one would stay Pending for ever
    time.sleep(5)
    still = one_job(kubectl, namespace)
    assert still is not None and still["metadata"]["uid"] == uid
    finish_pod(kubectl, namespace, job["metadata"]["name"], exit_code=0)

    def promoted() -> bool:
        found = one_job(kubectl, namespace)
        assert found is None or found["metadata"]["uid"] == uid, "a second Job was created"
        current = rollout(kubectl, namespace)
        assert current.get("phase") not in ("Aborted", "Inconclusive"), current
        return current.get("phase") == "Promoted" and current["stable"]["revision"] == commit

    waited(kubectl, namespace, tmp_path, promoted, "the new leader to finish the rollout")
    measured = audit_rows(tmp_path / "audit.db", "measurement")
    assert [m["value"]["exitCode"] for m in measured] == [0]
    wait_for(lambda: analysis_jobs(kubectl, namespace) == [], 60, "the Job deleted")


def test_a_job_the_apps_identity_may_not_create_aborts_the_canary_naming_the_refusal(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path
) -> None:
    start_agent("agent-a")
    # the App's identity (tether-deployer) may deploy, but not create Jobs
    kubectl("delete", "rolebinding", "tether-deployer", "-n", namespace)
    apply_yaml(
        kubectl,
        f"""apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: deploy-no-jobs, namespace: {namespace}}}
rules:
  - {{apiGroups: ["", apps], resources: ["*"], verbs: ["*"]}}
  - {{apiGroups: [batch], resources: [jobs], verbs: [get, list, watch, delete]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: deploy-no-jobs, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: deploy-no-jobs}}
subjects: [{{kind: ServiceAccount, name: tether-deployer, namespace: {namespace}}}]
""",
    )
    _, commit = rolled_out(repo, kubectl, namespace, smoke_template())
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: rollout(kubectl, namespace).get("phase") == "Aborted",
        "the canary to be aborted",
    )
    current = rollout(kubectl, namespace)
    assert current["candidate"]["revision"] == commit
    (reason,) = current["analysis"]["reasons"]
    assert f"Job {namespace}/web-" in reason and "could not be created" in reason
    assert f"system:serviceaccount:{namespace}:tether-deployer" in reason
    assert current["analysis"]["refused"] is True
    assert analysis_jobs(kubectl, namespace) == []
    wait_for(lambda: "RolledBack" in events(kubectl, namespace), 60, "the rollback")


BLUE_GREEN = """  delivery:
    - target: {kind: Deployment, name: web}
      blueGreen:
        activeService: web
        previewService: web-preview
        prePromotionAnalysis: {templates: [{templateName: smoke}]}
        postPromotionAnalysis: {templates: [{templateName: smoke}]}
        scaleDownDelay: 1s
"""


def test_a_blue_green_runs_its_pre_and_post_promotion_job_metrics(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path
) -> None:
    start_agent("agent-a")
    repo.write("app/web.yaml", renders.blue_green_render(new_version()))
    repo.write("app/template.yaml", smoke_template()).commit("v1")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=BLUE_GREEN))
    wait_for(lambda: rollout(kubectl, namespace).get("phase") == "Promoted", ROLLOUT_TIMEOUT, "v1")
    v2 = new_version()
    commit = repo.write("app/web.yaml", renders.blue_green_render(v2)).commit(v2)
    kubectl(
        "annotate", "gitsources.tether.dev/repo", "-n", namespace, "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )  # fmt: skip

    def promoted() -> bool:
        current = rollout(kubectl, namespace)
        assert current.get("phase") not in ("Aborted", "Frozen", "Inconclusive"), current
        return current.get("phase") == "Promoted" and current["stable"]["revision"] == commit

    waited(kubectl, namespace, tmp_path, promoted, "the blue-green to be promoted")
    measured = audit_rows(tmp_path / "audit.db", "measurement")
    assert [(m["metric"], m["value"]["exitCode"]) for m in measured] == [("smoke-test", 0)] * 2
    passed = [d for d in audit_rows(tmp_path / "audit.db", "decision") if d["decision"] == "passed"]
    assert len(passed) == 2 and all("smoke" in d["reason"] for d in passed)
    wait_for(lambda: analysis_jobs(kubectl, namespace) == [], 60, "the Jobs deleted")


def test_a_canary_aborted_by_hand_while_its_job_runs_deletes_the_job(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path, cli: Cli
) -> None:
    start_agent("agent-a")
    rolled_out(repo, kubectl, namespace, smoke_template({"nodeSelector": UNSCHEDULABLE}))
    waited(kubectl, namespace, tmp_path, lambda: one_job(kubectl, namespace), "the Job")
    kube = f"--kubeconfig={kubectl.kubeconfig}"
    code, _, err = cli("rollout", "abort", "web", "-n", namespace, "--reason", "not now", kube)
    assert code == 0, err
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: rollout(kubectl, namespace).get("phase") == "Aborted",
        "the abort by hand",
    )
    wait_for(lambda: analysis_jobs(kubectl, namespace) == [], 60, "the running Job deleted")
    assert audit_rows(tmp_path / "audit.db", "measurement") == []
