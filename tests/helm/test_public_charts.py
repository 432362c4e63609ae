"""What real public charts needed, reproduced with look-alike charts written for these tests
(``tests/helm/charts/``; each names the chart whose shape it copies).

Charts tried with ``tether diff`` / ``tether sync`` against the dev cluster (docs/helm.md,
"Public charts"): ingress-nginx, cert-manager, kube-state-metrics, prometheus-node-exporter,
bitnami's redis (with its ``common`` library chart vendored) and kube-prometheus-stack. Two of
them showed a problem, kept here:

- ingress-nginx's admission Jobs are pre-install hooks that delete themselves as soon as they
  finish (``ttlSecondsAfterFinished: 0``): the sync waited for a Job that was gone and failed
  after its timeout. A watch now sees the Job finish, so the sync goes on.
- kube-prometheus-stack names dependencies its values disable; Helm still wants each of them in
  ``charts/``, and the chart's own ``.gitignore`` hides ``charts/*``. The error says what to do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import Cli, GitRepo, Kubectl

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
