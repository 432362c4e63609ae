"""A canary step's analysis: the App's AnalysisTemplates, instantiated and run to a verdict.

The templates come out of the App's own render (``shaping.split_templates``), found by name.
Each measurement is handed to ``on_measurement`` as it is taken (the runner keeps it in the
rollout's status and the audit trail); an analysis interrupted by a restart goes on from the
measurements recorded in status (``previous``), so it neither starts over nor waits its initial
delay again. A template that cannot be read or instantiated, or a secret argument whose Secret
or key cannot be read, ends the analysis as an Error with its own message (the rollout pauses
and alerts: a person fixes it and retries). A Job the App's identity may not create ends it as
an Error too, ``refused``: waiting cannot fix the App's rights, so the rollout's ``onFailure``
applies (decision 0027).

``AnalysisWiring`` is what the runner wires in for the App: the cluster its Job metrics run on
(as the App's identity) and the reader of its secret arguments. Secret values are read when the
analysis starts (again after a restart), live only in the metrics in memory, and are masked in
every measurement and message (``tether.analysis.masking``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.analysis import (
    AnalysisTemplate,
    ArgValue,
    JobContext,
    Measurement,
    MeasurementRefused,
    Metric,
    read_template,
    run_analysis,
)
from tether.core import Manifest
from tether.delivery.model import AnalysisStatus, AnalysisStep, FieldPath
from tether.errors import AnalysisError

OnRecord = Callable[[dict[str, Any]], None]
ReadSecret = Callable[[str, str], Awaitable[str]]  # (Secret name, key) -> the value


@dataclass(frozen=True)
class PodTemplateHashes:
    """The ``pod-template-hash`` of the stable's and the candidate's (``Latest``) pods, as the
    rollout found them when the analysis started (None: not known)."""

    stable: str | None = None
    latest: str | None = None

    def of(self, which: str) -> str | None:
        return self.stable if which == "Stable" else self.latest


@dataclass(frozen=True)
class AnalysisWiring:
    """The cluster behind an App's analyses: where its Jobs run, how its secrets are read, the
    pods' hashes for ``valueFrom.podTemplateHashValue`` arguments, the target Deployment for
    ``valueFrom.fieldRef`` ones."""

    jobs: JobContext | None = None
    read_secret: ReadSecret | None = None
    hashes: PodTemplateHashes = PodTemplateHashes()
    # the target Deployment as read when the analysis started (``valueFrom.fieldRef``)
    target: Mapping[str, Any] | None = None


def templates_by_name(manifests: Sequence[Manifest]) -> dict[str, Manifest]:
    return {str((m.body.get("metadata") or {}).get("name", "")): m for m in manifests}


async def metrics_for(
    step: AnalysisStep, templates: Sequence[Manifest], wiring: AnalysisWiring | None = None
) -> list[Metric]:
    """The metrics of every template ``step`` names, with its arguments (AnalysisError names
    the template missing or refused, or the Secret and key of a secret argument not read)."""
    wiring = wiring or AnalysisWiring()
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
        args = await _args_for(template, step, wiring)
        metrics.extend(template.instantiate(args, jobs=wiring.jobs))
    return metrics


async def _args_for(
    template: AnalysisTemplate, step: AnalysisStep, wiring: AnalysisWiring
) -> dict[str, str | ArgValue]:
    """The step's arguments that ``template`` declares (one step may feed several templates),
    and the value of each secret argument the step does not give, read from its Secret."""
    given = step_values(step, wiring.hashes, wiring.target)
    args: dict[str, str | ArgValue] = {}
    for argument in template.arguments:
        if argument.name in given:
            args[argument.name] = given[argument.name]
            continue
        ref = argument.secret_key_ref
        if ref is None:
            continue
        if wiring.read_secret is None:
            raise AnalysisError(
                f"{template.title}: argument {argument.name!r} comes from Secret {ref.name} "
                f"key {ref.key}, and no Secret can be read here"
            )
        try:
            value = await wiring.read_secret(ref.name, ref.key)
        except AnalysisError as error:
            raise AnalysisError(f"{template.title}: argument {argument.name!r}: {error}") from None
        args[argument.name] = ArgValue(value, secret=True)
    return args


def step_values(
    step: AnalysisStep, hashes: PodTemplateHashes, target: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The step's argument values: each ``value``, the pod-template-hash it asks for, or the
    field of the ``target`` Deployment's metadata (AnalysisError naming the argument when the
    cluster did not show that hash, or the Deployment has no such field)."""
    values: dict[str, str] = {}
    for arg in step.args:
        if arg.field_ref is not None:
            values[arg.name] = _metadata_field(step, arg.name, arg.field_ref, target)
            continue
        if not arg.pod_template_hash:
            values[arg.name] = arg.value
            continue
        found = hashes.of(arg.pod_template_hash)
        if not found:
            side = "stable" if arg.pod_template_hash == "Stable" else "candidate"
            raise AnalysisError(
                f"analysis {', '.join(step.templates)}: argument {arg.name!r} is the "
                f"{arg.pod_template_hash} pod-template-hash, and the {side} Deployment's "
                "current ReplicaSet was not found available; `tether rollout retry` once it is"
            )
        values[arg.name] = found
    return values


def _metadata_field(
    step: AnalysisStep, name: str, ref: FieldPath, target: Mapping[str, Any] | None
) -> str:
    """The value ``ref`` points at in ``target``'s metadata; AnalysisError naming the argument,
    the path and the Deployment when there is none (a missing label is not an empty one)."""
    where = f"analysis {', '.join(step.templates)}: argument {name!r} ({ref.path})"
    if target is None:
        raise AnalysisError(f"{where}: the target Deployment was not found in the cluster")
    metadata = target.get("metadata") or {}
    found = metadata.get(ref.field)
    if ref.key:
        found = (found or {}).get(ref.key)
    if found is None or found == "":
        raise AnalysisError(
            f"{where}: Deployment {metadata.get('name', '?')} has no {ref.path}; set it in Git, "
            "then `tether rollout retry`"
        )
    return str(found)


async def run_step_analysis(
    index: int,
    step: AnalysisStep,
    templates: Sequence[Manifest],
    previous: Sequence[dict[str, Any]],
    on_record: OnRecord,
    wiring: AnalysisWiring | None = None,
) -> AnalysisStatus:
    """Run ``step``'s analysis to its verdict, going on from ``previous`` measurements."""
    name = "-".join(step.templates)
    try:
        metrics = await metrics_for(step, templates, wiring)
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
    except MeasurementRefused as error:  # a Job the App's identity may not create
        return AnalysisStatus(index, name, "Error", tuple(records), (str(error),), refused=True)
    return AnalysisStatus(
        index, name, result.verdict.value, tuple(records), tuple(result.reasons())
    )
