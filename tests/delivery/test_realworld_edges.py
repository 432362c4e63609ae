"""Rough edges met running real repositories' delivery (tests/delivery/realworld/), each kept
fixed here without a cluster.

- ``tether rollout status`` on an 80-column terminal or a pipe showed Argo Rollouts' canary
  example's target as ``Deployment…``: the target, phase and revisions are now whole (the next
  command needs them), the analysis and message wrap on lines of their own.
- Argo Rollouts' example AnalysisTemplates measure with Job metrics: read with no cluster to
  run them on (as lint and the CLI do), the Error says where they do run and what else to use.
- podinfo's HTTPRoute, with no Gateway controller answering it, kept the App Degraded, so no
  render was kept and the failed release's rollback had nothing to put back: the refusal now
  says where to look.
- ``tether lint`` told a user to add Argo's CRD for an AnalysisTemplate (which Tether never
  applies) and checked nothing in it: it now reads each template as a rollout would and reports
  what a rollout would refuse.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from tests.delivery.test_quarantine_gate import ListHost
from tests.policy.conftest import kustomize
from tether.audit import AuditStore
from tether.cli.output import rollout_table
from tether.core import Manifest, Revision
from tether.core.objects import SourceLocation
from tether.delivery.canary import run_step_analysis
from tether.delivery.model import AnalysisStep
from tether.delivery.rollback import Applied, RollbackError, abort
from tether.governance.lint import lint
from tether.governance.settings import LintSettings

REALWORLD = Path(__file__).parent / "realworld"
ARGO_TEMPLATES = REALWORLD / "argo-rollouts-canary"

__all__ = ["kustomize"]  # fixture used here

CANDIDATE = "a3f9c2e07b1d44e6b0c8d2f1e9a7b6c5d4e3f2a1"
STABLE = "e01f1bad1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"


def shown(width: int) -> str:
    delivery = {
        "Deployment/rollout-canary": {
            "phase": "Inconclusive",
            "step": 3,
            "weight": 40,
            "candidate": {"revision": CANDIDATE, "digest": "d1"},
            "stable": {"revision": STABLE, "digest": "d0"},
            "analysis": {
                "step": 3,
                "name": "success-rate",
                "phase": "Inconclusive",
                "measurements": [{"phase": "Error"}, {"phase": "Error"}],
            },
            "message": "analysis success-rate was inconclusive: no measurement could be taken "
            "from http://prometheus.monitoring:9090; a person decides",
        }
    }
    console = Console(width=width, record=True, highlight=False, markup=False)
    console.print(rollout_table(delivery))
    return console.export_text()


def test_target_phase_and_revisions_are_whole_on_80_columns() -> None:
    text = shown(80)
    assert "Deployment/rollout-canary" in text, text
    assert "Inconclusive" in text, text
    assert CANDIDATE[:12] in text and STABLE[:12] in text, text
    assert "…" not in text, text  # nothing cut short
    assert "success-rate Inconclusive (2)" in text, text


def test_the_message_wraps_rather_than_being_lost() -> None:
    text = " ".join(shown(80).split())
    assert "a person decides" in text, text


def test_a_job_metric_with_no_cluster_says_where_it_runs() -> None:
    path = ARGO_TEMPLATES / "analysis-templates.yaml"
    template = Manifest(yaml.safe_load(path.read_text()), SourceLocation(str(path)))
    status = asyncio.run(
        run_step_analysis(1, AnalysisStep(("pass",), ()), [template], [], lambda _: None)
    )
    assert status.phase == "Error"  # Inconclusive for the rollout: a person decides
    [reason] = status.reasons
    assert "AnalysisTemplate pass, metric 'pass'" in reason
    assert "spec.delivery" in reason and "prometheus or web metric" in reason


def test_a_rollback_with_no_healthy_render_says_where_to_look(tmp_path: Path) -> None:
    host = ListHost(AuditStore(str(tmp_path / "audit.db")))  # the App was never Healthy
    bad = Applied(Revision("https://git.example/podinfo.git", "main", "b" * 40), "sha256:v2")
    with pytest.raises(RollbackError) as refused:
        asyncio.run(
            abort(host, "team-a/web", reason="errors", evidence="-", actor="agent", candidate=bad)
        )
    message = str(refused.value)
    assert "no earlier healthy render is recorded" in message
    assert "`tether get app`" in message and "HTTPRoute" in message


INSECURE_METRIC = """  - name: latency
    interval: 1m
    successCondition: result[0] <= 0.5
    provider:
      prometheus:
        address: http://prometheus.monitoring:9090
        query: histogram_quantile(0.99, sum(rate(request_seconds_bucket[1m])) by (le))
        insecure: true
"""


def test_lint_reads_analysis_templates_as_a_rollout_would(tmp_path: Path, kustomize: Path) -> None:
    root = tmp_path / "gitops"
    shutil.copytree(REALWORLD / "podinfo", root / "apps" / "podinfo" / "base")
    templates = root / "apps" / "podinfo" / "base" / "success-rate.yaml"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    clean = lint(root, LintSettings(kustomize=kustomize))
    assert not [f for f in clean.findings if f.rule == "analysis-template-invalid"]
    assert not [f for f in clean.findings if "AnalysisTemplate" in (f.subject or "")]

    templates.write_text(templates.read_text() + INSECURE_METRIC)  # Argo allows insecure
    report = lint(root, LintSettings(kustomize=kustomize))
    [finding] = [f for f in report.findings if f.rule == "analysis-template-invalid"]
    assert finding.path == "apps/podinfo/base/success-rate.yaml", finding
    assert "metric 'latency'" in finding.message and "insecure" in finding.message
