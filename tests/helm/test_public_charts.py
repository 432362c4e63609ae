"""What real public charts needed, reproduced with look-alike charts written for these tests
(``tests/helm/charts/``; each names the chart whose shape it copies).

Charts tried with ``tether diff`` / ``tether sync`` against the dev cluster (docs/helm.md,
"Public charts"): ingress-nginx, cert-manager, kube-state-metrics, prometheus-node-exporter,
bitnami's redis (with its ``common`` library chart vendored) and kube-prometheus-stack. Two of
them showed a problem, kept here:

- ingress-nginx's admission Jobs are pre-install hooks that delete themselves as soon as they
  finish (``ttlSecondsAfterFinished: 0``): the sync waited for a Job that was gone and failed
  after its timeout. A watch now sees the Job finish, so the sync goes on; afterwards the Job's
  absence is no change (``diff`` is clean, the agent does not heal it into a loop), and it runs
  again with the app's next change.
- kube-prometheus-stack names dependencies its values disable; Helm still wants each of them in
  ``charts/``, and the chart's own ``.gitignore`` hides ``charts/*``. The error says what to do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.agent.conftest import (
    app_condition,
    app_ready,
    apply_yaml,
    source_and_app,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.conftest import Cli, GitRepo, Kubectl

__all__ = ["start_agent", "tether_crds"]  # fixtures used here

CHARTS = Path(__file__).parent / "charts"


def add_chart(repo: GitRepo, name: str) -> str:
    shutil.copytree(CHARTS / name, repo.root / "charts" / name)
    repo.commit(f"the {name} chart")
    return f"charts/{name}"


def test_hook_jobs_deleted_as_soon_as_they_finish_let_the_sync_go_on(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    chart = add_chart(repo, "ephemeral-hooks")
    args = ["--source", str(repo.root), "--chart", chart, "--app", "gate", "-n", namespace]
    code, out, err = cli("sync", *args, "--timeout", "60s", "-o", "json")
    report = json.loads(out)
    assert code == 0, report.get("error") or err
    actions = {f"{c['kind']}/{c['name']}": c["action"] for c in report["changes"]}
    assert actions["Job/gate-admission-create"] == "created"
    assert actions["Deployment/gate-gate"] == "created"  # applied after the hook finished
    assert kubectl.get("deployment", "gate-gate", namespace) is not None

    # gone once finished is the Job's normal state: no change to show, nothing to run again
    code, out, err = cli("diff", *args)
    assert code == 0, out + err
    code, out, err = cli("sync", *args, "--timeout", "60s", "-o", "json")
    again = json.loads(out)
    assert code == 0, again.get("error") or err
    assert {c["action"] for c in again["changes"]} == {"unchanged"}
    assert kubectl.get("job", "gate-admission-create", namespace) is None

    # with the app's next change, the hook runs again (as Helm runs it on every upgrade)
    repo.write("charts/ephemeral-hooks/values.yaml", "image: registry.example/gate:1.0.1\n")
    repo.commit("a new image")
    code, out, err = cli("sync", *args, "--timeout", "60s", "-o", "json")
    upgraded = json.loads(out)
    assert code == 0, upgraded.get("error") or err
    actions = {f"{c['kind']}/{c['name']}": c["action"] for c in upgraded["changes"]}
    assert actions["Job/gate-admission-create"] == "created"
    assert actions["Deployment/gate-gate"] == "configured"


def test_a_dependency_left_out_of_charts_is_named_with_what_to_do(
    cli: Cli, repo: GitRepo, namespace: str
) -> None:
    chart = add_chart(repo, "undeclared-dependency")
    args = ["--source", str(repo.root), "--chart", chart, "--app", "stack", "-n", namespace]
    code, out, err = cli("diff", *args)
    said = out + err
    assert code == 2, said
    assert "missing in charts/ directory: dashboards" in said
    assert "vendor every dependency" in said and ".gitignore" in said


def test_the_agent_does_not_heal_a_job_that_deleted_itself(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    chart = add_chart(repo, "ephemeral-hooks")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), chart, extra="  chart: {}\n"))
    agent = start_agent()
    wait_for(lambda: app_ready(kubectl, namespace), 90, "the chart app to be ready")
    wait_for(
        lambda: kubectl.get("job", "web-admission-create", namespace) is None,
        60,
        "the hook Job to delete itself",
    )
    # a hand deletion of the Deployment is drift (healed); the Job's own deletion is not
    kubectl("delete", "deployment", "web-gate", "-n", namespace)
    wait_for(
        lambda: kubectl.get("deployment", "web-gate", namespace) is not None,
        60,
        "the deleted Deployment to be healed",
    )
    events = kubectl(
        "get", "events", "-n", namespace, "-o", "json", "--field-selector",
        "involvedObject.kind=App,involvedObject.name=web,reason=DriftDetected",
    )  # fmt: skip
    messages = [e["message"] for e in json.loads(events.stdout)["items"]]
    assert any("web-gate" in m for m in messages), messages
    assert not any("admission-create" in m for m in messages), messages
    drifted = app_condition(kubectl, namespace, "web", "Drifted")
    assert drifted is None or drifted["status"] == "False", drifted
    agent.stop()
