"""The delivery model: what an App's ``spec.delivery`` asks for, and where a rollout stands.

Spec (one entry per Deployment; docs/delivery.md, decision 0019)::

    delivery:
      - target: {kind: Deployment, name: web}
        onFailure: rollback              # | freeze
        progressDeadline: 10m            # a step's replicas not Ready by then: onFailure
        canary:
          steps:
            - setWeight: 20
            - pause: {duration: 30s}     # pause: {} waits for `tether rollout promote`
            - analysis: {templates: [{templateName: error-rate}], args: [{name: v, value: x}]}
            - webhook: {url: https://gate.example/check, timeout: 10s}
          trafficRouting:
            gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}

Status (``App.status.delivery``, keyed by target ``Deployment/web``): a ``RolloutStatus`` holds
everything any replica needs to resume a rollout exactly where it was after a crash. Its JSON
form writes every field, ``null`` when absent, so a merge patch of the status replaces it whole.
Pure data: no I/O here.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tether.errors import TetherError

TRACK_LABEL = "tether.dev/track"
ROLLOUT_LABEL = "tether.dev/rollout"
# On the serving Deployment (the Git name): the digest of the pod template it was given from
# Git, so what serves is known from the object itself, even with the App's status lost.
TEMPLATE_DIGEST_ANNOTATION = "tether.dev/template-digest"
# Hand gestures on the App: ``promote@<timestamp>`` (acted on once per timestamp).
ACTION_ANNOTATION = "tether.dev/rollout-action"
ACTIONS = ("promote", "abort", "retry")
CANARY_SUFFIX = "-canary"
PREVIEW_SUFFIX = "-preview"
# A candidate Deployment's name suffix and track label, per strategy (canary, blue-green).
CANDIDATE_KINDS = ((CANARY_SUFFIX, "canary"), (PREVIEW_SUFFIX, "preview"))
# How long a candidate may take to have the replicas its step asks for Ready (like a
# Deployment's progressDeadlineSeconds, whose default is the same): then the rollout fails.
PROGRESS_DEADLINE_SECONDS = 600.0
MAX_MEASUREMENTS = 60  # per analysis, in status (the audit trail keeps them all)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


class DeliveryError(TetherError):
    """A ``spec.delivery`` entry that cannot be followed (names the App and the entry)."""


class Phase(enum.StrEnum):
    """Where one target's rollout stands."""

    PROGRESSING = "Progressing"  # steps are being run
    PAUSED = "Paused"  # an indefinite pause: waits for `tether rollout promote`
    PROMOTING = "Promoting"  # the Git name gets the candidate's template; candidate still up
    PROMOTED = "Promoted"  # idle: the Git name serves the last promoted version
    ABORTED = "Aborted"  # the candidate failed and was taken down; stable serves
    FROZEN = "Frozen"  # the candidate failed and onFailure is freeze: nothing moves
    INCONCLUSIVE = "Inconclusive"  # an analysis could not decide: a person promotes or aborts

    @property
    def active(self) -> bool:
        """True while a candidate runs beside stable (its Deployment exists)."""
        return self in (
            Phase.PROGRESSING,
            Phase.PAUSED,
            Phase.PROMOTING,
            Phase.FROZEN,
            Phase.INCONCLUSIVE,
        )


class OnFailure(enum.StrEnum):
    ROLLBACK = "rollback"
    FREEZE = "freeze"


@dataclass(frozen=True)
class SetWeight:
    weight: int  # percent of traffic (of replicas, without a router) on the candidate

    def describe(self) -> str:
        return f"setWeight {self.weight}"


@dataclass(frozen=True)
class Pause:
    duration: float | None  # seconds; None: until `tether rollout promote`

    def describe(self) -> str:
        return "pause until promoted" if self.duration is None else f"pause {self.duration:g}s"


POD_TEMPLATE_HASH_VALUES = ("Stable", "Latest")
# ``valueFrom.fieldRef.fieldPath``: the target Deployment's metadata fields an argument may take
# (the subset Argo Rollouts documents for a Rollout's own metadata; decision 0030)
FIELD_PATHS = (
    "metadata.name, metadata.namespace, metadata.labels['KEY'], metadata.annotations['KEY']"
)
_FIELD_PATH = re.compile(
    r"metadata\.(?P<field>name|namespace)|metadata\.(?P<map>labels|annotations)\['(?P<key>[^']+)'\]"
)


@dataclass(frozen=True)
class FieldPath:
    """A ``fieldRef.fieldPath`` read: ``field`` (name, namespace, labels, annotations) and, for
    a map, its ``key``."""

    path: str
    field: str
    key: str = ""


def read_field_path(path: str) -> FieldPath | None:
    """``metadata.labels['env']`` → FieldPath(path, "labels", "env"); None when not supported."""
    matched = _FIELD_PATH.fullmatch(path)
    if matched is None:
        return None
    if matched["field"]:
        return FieldPath(path, matched["field"])
    return FieldPath(path, matched["map"], matched["key"])


@dataclass(frozen=True)
class AnalysisArg:
    name: str
    value: str
    # ``valueFrom.podTemplateHashValue``: Stable | Latest (the candidate); "" for ``value``
    pod_template_hash: str = ""
    # ``valueFrom.fieldRef.fieldPath``: read from the target Deployment's metadata
    field_ref: FieldPath | None = None


@dataclass(frozen=True)
class AnalysisStep:
    templates: tuple[str, ...]
    args: tuple[AnalysisArg, ...] = ()

    def describe(self) -> str:
        return f"analysis {', '.join(self.templates)}"

    @property
    def wants_hashes(self) -> bool:
        """True when an argument is a pod-template-hash (read from the cluster at its start)."""
        return any(arg.pod_template_hash for arg in self.args)

    @property
    def wants_metadata(self) -> bool:
        """True when an argument is a field of the target's metadata (read at its start)."""
        return any(arg.field_ref is not None for arg in self.args)


@dataclass(frozen=True)
class Webhook:
    url: str
    timeout: float = 10.0

    def describe(self) -> str:
        return f"webhook {self.url}"


Step = SetWeight | Pause | AnalysisStep | Webhook


@dataclass(frozen=True)
class GatewayRouting:
    http_route: str
    stable_service: str
    canary_service: str


@dataclass(frozen=True)
class Canary:
    steps: tuple[Step, ...]
    routing: GatewayRouting | None = None


@dataclass(frozen=True)
class BlueGreen:
    active_service: str
    preview_service: str
    pre_promotion: AnalysisStep | None = None
    post_promotion: AnalysisStep | None = None
    auto_promotion: bool = True
    scale_down_delay: float = 30.0


@dataclass(frozen=True)
class Target:
    kind: str
    name: str

    @property
    def key(self) -> str:
        """``Deployment/web``: the target's key in ``status.delivery``."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class DeliverySpec:
    """One entry of ``spec.delivery``."""

    target: Target
    on_failure: OnFailure = OnFailure.ROLLBACK
    canary: Canary | None = None
    blue_green: BlueGreen | None = None
    progress_deadline: float = PROGRESS_DEADLINE_SECONDS  # seconds a step waits for replicas

    @property
    def candidate_suffix(self) -> str:
        return CANDIDATE_KINDS[self.blue_green is not None][0]

    @property
    def candidate_name(self) -> str:
        return self.target.name + self.candidate_suffix

    @property
    def track(self) -> str:
        return CANDIDATE_KINDS[self.blue_green is not None][1]

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.canary.steps if self.canary is not None else ()


# -- status ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One version of a target: the commit it was rendered from and its template's digest."""

    revision: str
    digest: str  # tether.core.compare digest of the Deployment's pod template, as rendered
    render_digest: str = ""  # the whole render's digest (tether.core.renderdigest), when known

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "digest": self.digest,
            "renderDigest": self.render_digest,
        }

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> Version | None:
        if not raw:
            return None
        return cls(
            str(raw.get("revision") or ""),
            str(raw.get("digest") or ""),
            str(raw.get("renderDigest") or ""),
        )


@dataclass(frozen=True)
class AnalysisStatus:
    """The analysis of one step: its verdict so far and its measurements (for a resume)."""

    step: int
    name: str
    phase: str = "Running"  # tether.analysis Verdict value
    measurements: tuple[dict[str, Any], ...] = ()
    reasons: tuple[str, ...] = ()
    refused: bool = False  # an Error no wait can fix (a Job the App may not create): onFailure

    @property
    def finished(self) -> bool:
        return self.phase != "Running"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "name": self.name,
            "phase": self.phase,
            "count": len(self.measurements),
            "measurements": list(self.measurements[-MAX_MEASUREMENTS:]),
            "reasons": list(self.reasons),
            **({"refused": True} if self.refused else {}),
        }

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> AnalysisStatus | None:
        if not raw:
            return None
        return cls(
            int(raw.get("step", 0)),
            str(raw.get("name") or ""),
            str(raw.get("phase") or "Running"),
            tuple(raw.get("measurements") or ()),
            tuple(str(r) for r in raw.get("reasons") or ()),
            bool(raw.get("refused")),
        )


class GateOutcome(enum.StrEnum):
    """Where a webhook gate stands (``tether.delivery.gates``)."""

    CALLING = "Calling"  # no answer yet: being called, or retried after a 5xx / no answer
    PASSED = "Passed"  # a 2xx answer
    REFUSED = "Refused"  # a clear no: any other answer (4xx, 3xx)
    INCONCLUSIVE = "Inconclusive"  # unreachable or 5xx until the step's timeout: a person decides


@dataclass(frozen=True)
class GateStatus:
    """A webhook gate's answer for one step, or its calls so far (kept so a replica that takes
    over goes on with the same attempts and deadline)."""

    step: int
    passed: bool
    message: str
    undecided: GateOutcome | None = None  # CALLING or INCONCLUSIVE; None: ``passed`` says
    attempts: int = 0  # calls made (each one counted before it is sent)
    started_at: str = ""  # ISO 8601, UTC: the first call; the deadline runs from it

    @property
    def outcome(self) -> GateOutcome:
        if self.undecided is not None:
            return self.undecided
        return GateOutcome.PASSED if self.passed else GateOutcome.REFUSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "passed": self.passed,
            "message": self.message,
            "outcome": self.outcome.value,
            "attempts": self.attempts,
            "startedAt": self.started_at or None,
        }

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> GateStatus | None:
        if not raw:
            return None
        undecided = raw.get("outcome")
        return cls(
            int(raw.get("step", 0)),
            bool(raw.get("passed")),
            str(raw.get("message", "")),
            GateOutcome(undecided) if undecided in _UNDECIDED_GATES else None,
            int(raw.get("attempts") or 0),
            str(raw.get("startedAt") or ""),
        )


_UNDECIDED_GATES = (GateOutcome.CALLING.value, GateOutcome.INCONCLUSIVE.value)


@dataclass(frozen=True)
class RolloutStatus:
    """One target's rollout, as recorded in ``App.status.delivery[target]``."""

    phase: Phase = Phase.PROMOTED
    step: int = 0
    step_started_at: str = ""  # ISO 8601, UTC
    weight: int = 0  # percent on the candidate now
    candidate: Version | None = None
    stable: Version | None = None
    analysis: AnalysisStatus | None = None
    gate: GateStatus | None = None
    message: str = ""
    decisions: int = 0  # gate decisions taken in this rollout (each one is in the audit trail)
    handled_action: str = ""  # the last rollout-action annotation acted on
    aborted: tuple[str, ...] = ()  # template digests aborted (not rolled out again unasked)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "step": self.step,
            "stepStartedAt": self.step_started_at or None,
            "weight": self.weight,
            "candidate": self.candidate.to_dict() if self.candidate else None,
            "stable": self.stable.to_dict() if self.stable else None,
            "analysis": self.analysis.to_dict() if self.analysis else None,
            "gate": self.gate.to_dict() if self.gate else None,
            "message": self.message,
            "decisions": self.decisions,
            "handledAction": self.handled_action or None,
            "aborted": list(self.aborted[-10:]),
        }

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> RolloutStatus | None:
        if not raw:
            return None
        try:
            phase = Phase(str(raw.get("phase")))
        except ValueError:
            phase = Phase.PROMOTED
        return cls(
            phase=phase,
            step=int(raw.get("step") or 0),
            step_started_at=str(raw.get("stepStartedAt") or ""),
            weight=int(raw.get("weight") or 0),
            candidate=Version.of(raw.get("candidate")),
            stable=Version.of(raw.get("stable")),
            analysis=AnalysisStatus.of(raw.get("analysis")),
            gate=GateStatus.of(raw.get("gate")),
            message=str(raw.get("message") or ""),
            decisions=int(raw.get("decisions") or 0),
            handled_action=str(raw.get("handledAction") or ""),
            aborted=tuple(str(d) for d in raw.get("aborted") or ()),
        )

    def at_step(self, step: int, now: datetime) -> RolloutStatus:
        """This status moved to ``step``, started ``now``, with no analysis or gate answer."""
        return replace(self, step=step, step_started_at=now.isoformat(), analysis=None, gate=None)


@dataclass(frozen=True)
class RolloutRequest:
    """A person's gesture read from the App's rollout-action annotation.

    ``by`` is who the annotation CLAIMS asked: anyone who may patch the App can write any name
    there. ``written_with`` is what the API server recorded of the write (the field manager
    that owns the annotation, its operation and time, from ``managedFields``): the time is the
    server's, the manager a name the client chose. Neither is an identity the API server
    checked, so a request is never ``verified`` today (decision 0032)."""

    action: str  # promote | abort | retry
    at: str  # the annotation's timestamp: the request's identity
    by: str = ""  # who asked, as claimed (tether.dev/rollout-action-by)
    reason: str = ""
    written_with: str = ""  # "tether-cli (Update at 2026-11-28T08:00:00Z)", "" when unknown

    @property
    def key(self) -> str:
        return f"{self.action}@{self.at}"

    @property
    def who(self) -> str:
        """The claimed name, marked as claimed, for Events and messages."""
        return f"{self.by or 'unknown user'} (claimed, unverified)"

    def provenance(self) -> dict[str, Any]:
        """What an audit row records of who decided: claimed, recorded, verified."""
        return {
            "claimedBy": self.by,
            "writtenWith": self.written_with,
            "verified": False,
        }


def read_request(annotations: Mapping[str, str], written_with: str = "") -> RolloutRequest | None:
    """The rollout-action annotation (``promote@2026-11-27T22:00:00Z``), or None;
    ``written_with``: ``request_writer`` of the App's managedFields."""
    raw = annotations.get(ACTION_ANNOTATION, "")
    action, _, at = raw.partition("@")
    if action not in ACTIONS or not at:
        return None
    return RolloutRequest(
        action,
        at,
        annotations.get(ACTION_ANNOTATION + "-by", ""),
        annotations.get(ACTION_ANNOTATION + "-reason", ""),
        written_with,
    )


def request_writer(managed_fields: Sequence[Mapping[str, Any]]) -> str:
    """Who wrote the rollout-action annotation as the API server recorded it: the field
    manager owning it, with its operation and time ("" when no entry owns it). The manager
    is a name the writing client chose (``tether-cli``, ``kubectl-annotate``, ...)."""
    wanted = f"f:{ACTION_ANNOTATION}"
    for entry in managed_fields:
        annotations = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get(
            "f:annotations"
        ) or {}
        if wanted in annotations:
            return (
                f"{entry.get('manager') or 'unnamed'} "
                f"({entry.get('operation') or '?'} at {entry.get('time') or '?'})"
            )
    return ""


# -- reading spec.delivery ------------------------------------------------------------------


def seconds(duration: str | int, where: str) -> float:
    """``1m30s`` → 90.0, a bare number of seconds (``10``, as Argo Rollouts reads it) → 10.0;
    a DeliveryError naming ``where`` for anything else."""
    if isinstance(duration, int) and not isinstance(duration, bool) and duration >= 0:
        return float(duration)
    text = str(duration).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise DeliveryError(f"{where}: {duration!r} is not a duration like 30s, 5m or 1m30s")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def read_delivery(raw: Sequence[Any] | None, app: str) -> tuple[DeliverySpec, ...]:
    """``spec.delivery`` of App ``app``, checked (the CRD schema has checked its shape)."""
    specs = tuple(
        _entry(entry, f"App {app}: spec.delivery[{i}]") for i, entry in enumerate(raw or ())
    )
    keys = [s.target.key for s in specs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise DeliveryError(f"App {app}: spec.delivery names {duplicates[0]} more than once")
    return specs


def _entry(raw: Mapping[str, Any], where: str) -> DeliverySpec:
    target_raw = raw.get("target") or {}
    kind, name = str(target_raw.get("kind") or "Deployment"), str(target_raw.get("name") or "")
    if kind != "Deployment" or not name:
        raise DeliveryError(f"{where}: target must be a Deployment with a name, got {target_raw}")
    canary_raw, blue_green_raw = raw.get("canary"), raw.get("blueGreen")
    deadline = raw.get("progressDeadline")
    if (canary_raw is None) == (blue_green_raw is None):
        raise DeliveryError(f"{where}: set exactly one of canary and blueGreen")
    return DeliverySpec(
        target=Target(kind, name),
        on_failure=OnFailure(str(raw.get("onFailure") or "rollback")),
        canary=_canary(canary_raw, where) if canary_raw is not None else None,
        blue_green=_blue_green(blue_green_raw, where) if blue_green_raw is not None else None,
        progress_deadline=seconds(deadline, f"{where}.progressDeadline")
        if deadline
        else PROGRESS_DEADLINE_SECONDS,
    )


def _canary(raw: Mapping[str, Any], where: str) -> Canary:
    steps = tuple(
        _step(step, f"{where}.canary.steps[{i}]") for i, step in enumerate(raw.get("steps") or ())
    )
    gateway = (raw.get("trafficRouting") or {}).get("gatewayAPI")
    routing = (
        GatewayRouting(
            str(gateway["httpRoute"]), str(gateway["stableService"]), str(gateway["canaryService"])
        )
        if gateway
        else None
    )
    return Canary(steps, routing)


def _step(raw: Mapping[str, Any], where: str) -> Step:
    if len(raw) != 1:
        raise DeliveryError(
            f"{where}: a step is exactly one of setWeight, pause, analysis, webhook; got "
            f"{sorted(raw) or 'nothing'}"
        )
    ((kind, value),) = raw.items()
    if kind == "setWeight":
        weight = int(value)
        if not 0 <= weight <= 100:
            raise DeliveryError(f"{where}: setWeight {weight} is not a percentage (0 to 100)")
        return SetWeight(weight)
    if kind == "pause":
        duration = (value or {}).get("duration")
        return Pause(
            None if duration in (None, "") else seconds(duration, f"{where}.pause.duration")
        )
    if kind == "analysis":
        return _analysis(value or {}, where)
    if kind == "webhook":
        url = str((value or {}).get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise DeliveryError(f"{where}: webhook.url must be an http(s) URL, got {url!r}")
        timeout = (value or {}).get("timeout")
        return Webhook(url, seconds(timeout, f"{where}.webhook.timeout") if timeout else 10.0)
    raise DeliveryError(
        f"{where}: unknown step {kind!r}; use setWeight, pause, analysis or webhook"
    )


def _analysis(raw: Mapping[str, Any], where: str) -> AnalysisStep:
    templates = tuple(str(t.get("templateName") or "") for t in raw.get("templates") or ())
    if not templates or not all(templates):
        raise DeliveryError(f"{where}: analysis needs templates: [{{templateName: NAME}}]")
    args = tuple(_arg(a, f"{where}.args[{i}]") for i, a in enumerate(raw.get("args") or ()))
    return AnalysisStep(templates, args)


def _arg(raw: Mapping[str, Any], where: str) -> AnalysisArg:
    """``{name, value}``, ``{name, valueFrom: {podTemplateHashValue: Stable|Latest}}`` or
    ``{name, valueFrom: {fieldRef: {fieldPath: metadata.labels['env']}}}``."""
    name = str(raw["name"])
    value_from = raw.get("valueFrom") or {}
    if not value_from:
        return AnalysisArg(name, str(raw.get("value", "")))
    which = str(value_from.get("podTemplateHashValue") or "")
    if set(value_from) == {"podTemplateHashValue"} and which in POD_TEMPLATE_HASH_VALUES:
        return AnalysisArg(name, "", which)
    if set(value_from) == {"fieldRef"}:
        path = str((value_from.get("fieldRef") or {}).get("fieldPath") or "")
        field_ref = read_field_path(path)
        if field_ref is None:
            raise DeliveryError(
                f"{where}: valueFrom.fieldRef.fieldPath {path!r} is not read; an argument takes "
                f"one of the target Deployment's {FIELD_PATHS}"
            )
        return AnalysisArg(name, "", field_ref=field_ref)
    raise DeliveryError(
        f"{where}: valueFrom takes podTemplateHashValue: Stable or Latest, or fieldRef: "
        f"{{fieldPath: ...}} ({FIELD_PATHS}), got {value_from}"
    )


def _blue_green(raw: Mapping[str, Any], where: str) -> BlueGreen:
    pre, post = raw.get("prePromotionAnalysis"), raw.get("postPromotionAnalysis")
    delay = raw.get("scaleDownDelay")
    return BlueGreen(
        active_service=str(raw.get("activeService") or ""),
        preview_service=str(raw.get("previewService") or ""),
        pre_promotion=_analysis(pre, f"{where}.blueGreen.prePromotionAnalysis") if pre else None,
        post_promotion=_analysis(post, f"{where}.blueGreen.postPromotionAnalysis")
        if post
        else None,
        auto_promotion=bool(raw.get("autoPromotionEnabled", True)),
        scale_down_delay=seconds(delay, f"{where}.blueGreen.scaleDownDelay") if delay else 30.0,
    )


@dataclass(frozen=True)
class Observations:
    """What the runner saw for one target before asking the machine what to do next."""

    now: datetime
    head: Version  # the head render's version of the target
    serving: Version | None  # what the Git name serves now (None: nothing deployed yet)
    total: int = 1  # replicas Git asks for
    candidate_available: int = 0  # available replicas of the candidate at the head's template
    candidate_ready: int = 0  # Ready replicas of the candidate Deployment, whatever they run
    promoted_ready: bool = False  # the Git name has rolled out the candidate's template
    promoted_ready_replicas: int = 0  # Ready replicas of the Git name at that template
    request: RolloutRequest | None = None
    analysis: AnalysisStatus | None = None  # the current step's analysis as the runner has it
    gate: GateStatus | None = None  # the current step's webhook answer, once called
    extra: Mapping[str, Any] = field(default_factory=dict)
