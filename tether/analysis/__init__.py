"""Analysis: metric providers and pure verdicts, the evidence progressive delivery acts on.

    template.read_template(doc)          an Argo Rollouts or Tether AnalysisTemplate, checked
      .instantiate(args, jobs=...)    -> [Metric]   arguments substituted, conditions compiled
    run.run_analysis(metrics)         -> AnalysisResult   measure at each interval, until done
    verdict.assess_metric(limits, ms) -> Assessment       pure: the verdict of measurements

Providers: ``prometheus`` (instant query), ``web`` (HTTP + JSON path), ``job`` (a Kubernetes
Job's exit code, through a ``JobCluster`` delivery wires to the cluster client: this piece never
talks to the Kubernetes API itself). Conditions are CEL over ``result`` (``tether.core.cel``).
Measurements are plain records with secrets masked. See docs/analysis.md and
docs/decisions/0018-analysis-measurements-and-verdicts.md.
"""

from tether.analysis.conditions import Conditions
from tether.analysis.job import JobCluster, JobProvider, JobRefused
from tether.analysis.measurement import Empty, EmptyResult, Measurement, Phase
from tether.analysis.metric import Metric
from tether.analysis.prometheus import PrometheusProvider
from tether.analysis.provider import Header, MeasurementError, MeasurementRefused, Provider
from tether.analysis.run import AnalysisResult, MetricResult, run_analysis, run_metric
from tether.analysis.template import (
    AnalysisTemplate,
    ArgValue,
    JobContext,
    SecretKeyRef,
    is_template,
    read_metrics,
    read_template,
)
from tether.analysis.verdict import Assessment, Limits, Verdict, assess_metric, combine
from tether.analysis.web import WebProvider

__all__ = [
    "AnalysisResult",
    "AnalysisTemplate",
    "ArgValue",
    "Assessment",
    "Conditions",
    "Empty",
    "EmptyResult",
    "Header",
    "JobCluster",
    "JobContext",
    "JobProvider",
    "JobRefused",
    "Limits",
    "Measurement",
    "MeasurementError",
    "MeasurementRefused",
    "Metric",
    "MetricResult",
    "Phase",
    "PrometheusProvider",
    "Provider",
    "SecretKeyRef",
    "Verdict",
    "WebProvider",
    "assess_metric",
    "combine",
    "is_template",
    "read_metrics",
    "read_template",
    "run_analysis",
    "run_metric",
]
