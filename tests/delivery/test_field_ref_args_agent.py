"""``args[].valueFrom.fieldRef`` in a canary step's analysis, with the agent as a process, a
real Prometheus and the real control plane: the argument is read from the target Deployment's
metadata as Git wrote it (Argo Rollouts reads it from the Rollout's; decision 0030). The
template's query names the version the label gives; only that version is served, so the
analysis can pass only when the label's value was the one measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.analysis.prom import Prometheus
from tests.conftest import GitRepo, Kubectl
from tests.delivery import test_canary_agent as canary
from tests.delivery.agentkit import rollout, waited
from tests.delivery.signals import MetricsApp, new_version

FIELD_REF_STEPS = """          - setWeight: 25
          - analysis: {{templates: [{{templateName: error-rate}}], args: [{{name: version, valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['version']"}}}}}}]}}
          - setWeight: 100"""


def test_a_field_ref_argument_measures_the_version_the_deployments_label_names(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    start_agent("agent-a")
    canary.first_version(repo, kubectl, namespace, prometheus, FIELD_REF_STEPS)
    v2 = new_version()
    canary.serving(metrics_app, prometheus, v2, 0.0)  # only v2 has traffic to measure
    labelled = canary.deployment(v2).replace(
        "metadata: {name: web}\n", f"metadata: {{name: web, labels: {{version: {v2}}}}}\n", 1
    )
    assert f"labels: {{version: {v2}}}" in labelled
    repo.write("app/web.yaml", labelled)
    commit = repo.commit(v2)
    kubectl(
        "annotate", "gitsources.tether.dev/repo", "-n", namespace, "--overwrite",
        f"tether.dev/reconcile-requested-at={commit}",
    )  # fmt: skip

    def promoted() -> bool:
        current = rollout(kubectl, namespace)
        assert current.get("phase") not in ("Aborted", "Inconclusive"), current
        return current.get("phase") == "Promoted" and current["stable"]["revision"] == commit

    waited(kubectl, namespace, tmp_path, promoted, "the canary promoted on its label's version")
    decisions = canary.audit_rows(tmp_path / "audit.db", "decision")
    passed = [d for d in decisions if d["decision"] == "passed" and d["revision"] == commit]
    assert len(passed) == 1 and "error-rate" in passed[0]["reason"], decisions
    measured = canary.audit_rows(tmp_path / "audit.db", "measurement")
    successful = [m for m in measured if m["phase"] == "Successful"]
    assert len(successful) >= 3 and all(m["value"] is not None for m in successful), measured
