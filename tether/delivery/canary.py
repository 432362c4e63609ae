"""A canary step's analysis: the App's AnalysisTemplates, instantiated and run to a verdict.

The templates come out of the App's own render (``shaping.split_templates``), found by name.
Each measurement is handed to ``on_measurement`` as it is taken (the runner keeps it in the
rollout's status and the audit trail); an analysis interrupted by a restart goes on from the
measurements recorded in status (``previous``), so it neither starts over nor waits its initial
delay again. A template that cannot be read or instantiated ends the analysis as an Error, with
the template's own message: the rollout's ``onFailure`` applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tether.analysis import (
    AnalysisTemplate,
    Measurement,
    Metric,
    read_template,
    run_analysis,
)
from tether.core import Manifest
from tether.delivery.model import AnalysisStatus, AnalysisStep
from tether.errors import AnalysisError

OnRecord = Callable[[dict[str, Any]], None]


def templates_by_name(manifests: Sequence[Manifest]) -> dict[str, Manifest]:
    return {str((m.body.get("metadata") or {}).get("name", "")): m for m in manifests}


def metrics_for(step: AnalysisStep, templates: Sequence[Manifest]) -> list[Metric]:
    """The metrics of every template ``step`` names, with its arguments (AnalysisError names
    the template missing or refused)."""
    found = templates_by_name(templates)
    metrics: list[Metric] = []
    for name in step.templates:
        manifest = found.get(name)
        if manifest is None:
            known = ", ".join(sorted(found)) or "none"
            raise AnalysisError(
                f"AnalysisTemplate {name} is not in the App's render (templates found: {known}); "
                "add it next to the Deployment in Git"
            )
        template = read_template(manifest.body, manifest.source.path)
        metrics.extend(template.instantiate(_args_for(template, step)))
    return metrics


def _args_for(template: AnalysisTemplate, step: AnalysisStep) -> dict[str, str]:
    """The step's arguments that ``template`` declares (one step may feed several templates)."""
    declared = {argument.name for argument in template.arguments}
    return {arg.name: arg.value for arg in step.args if arg.name in declared}


async def run_step_analysis(
    index: int,
    step: AnalysisStep,
    templates: Sequence[Manifest],
    previous: Sequence[dict[str, Any]],
    on_record: OnRecord,
) -> AnalysisStatus:
    """Run ``step``'s analysis to its verdict, going on from ``previous`` measurements."""
    name = "-".join(step.templates)
    try:
        metrics = metrics_for(step, templates)
    except AnalysisError as error:
        return AnalysisStatus(index, name, "Error", tuple(previous), (str(error),))
    earlier: dict[str, list[Measurement]] = {}
    for record in previous:
        measurement = Measurement.from_record(record)
        earlier.setdefault(measurement.metric, []).append(measurement)
    records = list(previous)

    def recorded(measurement: Measurement) -> None:
        record = measurement.to_record()
        records.append(record)
        on_record(record)

    try:
        result = await run_analysis(metrics, previous=earlier, on_measurement=recorded)
    except ValueError as error:  # two templates with a metric of the same name
        return AnalysisStatus(index, name, "Error", tuple(records), (f"{name}: {error}",))
    return AnalysisStatus(
        index, name, result.verdict.value, tuple(records), tuple(result.reasons())
    )
