"""The rollout state machine: ``advance(spec, status, observations) -> (status, actions)``.

Pure: no clock, no I/O. The runner observes the cluster, calls ``advance`` and performs the
actions it returns (start an analysis, call a webhook, abort, record a decision, raise an
Event or an alert, wake the App later). Everything a rollout needs to go on is in the returned
``RolloutStatus``, which the runner writes to the App's status before anything is applied; so
an agent killed at any point, or another replica taking over, resumes exactly where it was.

Phases (decision 0019)::

    Promoted ──new template in Git──▶ Progressing ──steps done──▶ Promoting ──ready──▶ Promoted
                                       │  ▲   │ pause {}                 (Git name gets the
                                       │  │   ▼                           candidate's template)
                                       │  └ Paused ◀─promote─
                                       ├─analysis Inconclusive──▶ Inconclusive (alert; promote,
                                       │ (or webhook unreachable)   abort or retry by hand)
                                       └─analysis/webhook fails─▶ Aborted (onFailure: rollback)
                                                                  Frozen  (onFailure: freeze)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from tether.delivery.model import (
    AnalysisStatus,
    AnalysisStep,
    DeliverySpec,
    GateOutcome,
    GateStatus,
    Observations,
    OnFailure,
    Pause,
    Phase,
    RolloutRequest,
    RolloutStatus,
    SetWeight,
    Webhook,
)

AGENT = "agent"
POLL_SECONDS = 2.0  # how soon to look again while replicas come up
_SUCCESSFUL = "Successful"
# Verdicts that never pass and never fail a rollout by themselves: it pauses and alerts
# (docs/analysis.md: no data, or no measurement could be taken)
_UNDECIDED = ("Inconclusive", "Error")


# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartAnalysis:
    """Run (or go on running) the analysis of ``step``; its verdict comes back in status."""

    step: int
    analysis: AnalysisStep


@dataclass(frozen=True)
class CallWebhook:
    step: int
    webhook: Webhook


@dataclass(frozen=True)
class Abort:
    """Take the candidate down and quarantine it (the rollback helper's ``abort``)."""

    reason: str
    evidence: tuple[str, ...]
    actor: str
    request: RolloutRequest | None = None  # a person's gesture: what it claims (decision 0032)


@dataclass(frozen=True)
class Decision:
    """A gate decision, for the audit trail: who decided what, why, at which commit."""

    decision: str  # started, passed, promoted, aborted, frozen, paused, retried, ...
    actor: str
    reason: str
    step: int
    revision: str
    request: RolloutRequest | None = None  # a person's gesture: what it claims (decision 0032)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Alert:
    """Tell people: an abort, a freeze, an inconclusive analysis, a promotion."""

    event: str  # RolloutAborted, RolloutFrozen, RolloutInconclusive, RolloutPromoted
    severity: str  # info | warning | error
    summary: str


@dataclass(frozen=True)
class WakeUp:
    """Look at the rollout again in ``after`` seconds (a timed pause, replicas coming up)."""

    after: float


Action = StartAnalysis | CallWebhook | Abort | Decision | Event | Alert | WakeUp


@dataclass(frozen=True)
class Advance:
    status: RolloutStatus
    actions: tuple[Action, ...]


# -- traffic by replicas --------------------------------------------------------------------


def replica_split(total: int, weight: int) -> tuple[int, int]:
    """``(stable, candidate)`` replicas for ``weight`` percent on the candidate: the candidate
    gets ceil(total*weight/100); while 0 < weight < 100 each side keeps at least one."""
    total = max(total, 1)
    if weight <= 0:
        return total, 0
    if weight >= 100:
        return 0, total
    candidate = max(1, math.ceil(total * weight / 100))
    return max(1, total - candidate), candidate


# -- the machine ----------------------------------------------------------------------------


@dataclass
class _Run:
    """One call of ``advance``: the status as it moves, and the actions gathered."""

    spec: DeliverySpec
    obs: Observations
    status: RolloutStatus
    actions: list[Action] = field(default_factory=list)

    def decide(
        self,
        decision: str,
        reason: str,
        actor: str = AGENT,
        request: RolloutRequest | None = None,
    ) -> None:
        revision = self.status.candidate.revision if self.status.candidate else ""
        self.actions.append(Decision(decision, actor, reason, self.status.step, revision, request))
        self.status = replace(self.status, decisions=self.status.decisions + 1)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.actions.append(Event(type_, reason, f"{self.spec.target.key}: {message}"))

    def alert(self, event: str, severity: str, summary: str) -> None:
        self.actions.append(Alert(event, severity, f"{self.spec.target.key}: {summary}"))

    def move(self, step: int, phase: Phase = Phase.PROGRESSING, message: str = "") -> None:
        self.status = replace(self.status.at_step(step, self.obs.now), phase=phase, message=message)


def advance(spec: DeliverySpec, status: RolloutStatus | None, obs: Observations) -> Advance:
    """The next status of ``spec``'s rollout and what to do to get there."""
    run = _Run(spec, obs, status or _first_status(obs))
    if obs.request is not None and obs.request.key != run.status.handled_action:
        run.status = replace(run.status, handled_action=obs.request.key)
        _handle_request(run, obs.request)
    _follow_head(run)
    for _ in range(len(spec.steps) + 3):  # each turn moves one step or stops
        if not _step(run):
            break
    return Advance(run.status, tuple(run.actions))


def _first_status(obs: Observations) -> RolloutStatus:
    """Before any rollout: what the Git name serves is stable (the head, on a first deploy)."""
    return RolloutStatus(phase=Phase.PROMOTED, stable=obs.serving or obs.head)


def _follow_head(run: _Run) -> None:
    """Start, restart or cancel the rollout when Git's head template changes."""
    status, head = run.status, run.obs.head
    stable_digest = status.stable.digest if status.stable else ""
    if status.phase.active:
        if status.candidate is not None and head.digest == status.candidate.digest:
            return
        if head.digest == stable_digest:
            run.status = replace(status, phase=Phase.PROMOTED, candidate=None, weight=0)
            run.move(0, Phase.PROMOTED, f"Git went back to the stable version {head.revision}")
            run.event("Normal", "RolloutCancelled", run.status.message)
            run.decide("cancelled", f"head {head.revision} renders the stable version again")
            return
        _start(
            run, "RolloutRestarted", f"a newer version at {head.revision} replaces the candidate"
        )
        return
    if head.digest == stable_digest:
        held = status.candidate is not None and status.candidate.revision == head.revision
        if status.phase is Phase.ABORTED and not held:  # held: the quarantine serves stable
            run.status = replace(status, phase=Phase.PROMOTED, candidate=None)
            run.move(0, Phase.PROMOTED, f"Git's head {head.revision} renders the stable version")
        return
    if head.digest in status.aborted:
        message = (
            f"the version at {head.revision} was aborted; stable keeps serving "
            "(push a fix, or `tether rollout retry`)"
        )
        if status.message != message and status.phase is not Phase.ABORTED:
            run.status = replace(status, message=message)
        return
    _start(run, "RolloutStarted", f"rolling out {head.revision}")


def _start(run: _Run, reason: str, message: str) -> None:
    run.status = replace(
        run.status,
        candidate=run.obs.head,
        weight=0,
        aborted=tuple(d for d in run.status.aborted if d != run.obs.head.digest),
    )
    run.move(0, Phase.PROGRESSING, message)
    run.event("Normal", reason, message)
    run.decide("started", message)


# The phases in which the machine acts on each gesture; in any other it refuses, saying what
# to do instead (``refusal``).
ACCEPTED: dict[str, tuple[Phase, ...]] = {
    "promote": (Phase.PROGRESSING, Phase.PAUSED, Phase.INCONCLUSIVE, Phase.FROZEN),
    "abort": (Phase.PROGRESSING, Phase.PAUSED, Phase.INCONCLUSIVE, Phase.FROZEN),
    "retry": (Phase.ABORTED, Phase.FROZEN, Phase.INCONCLUSIVE),
}


def refusal(action: str, phase: Phase, app: str = "APP") -> str:
    """Why ``tether rollout ACTION`` does nothing to a rollout in ``phase``, and what does
    instead; "" when the machine acts on it. The Event the agent raises and what the CLI
    prints before writing the gesture (``app``: the App's name in the commands it suggests)."""
    if phase in ACCEPTED.get(action, ()):
        return ""
    rollback = f"`tether rollback {app} --reason ...` puts the previous version back"
    instead = {
        ("abort", Phase.PROMOTING): (
            "promotion has begun: the Git name is already rolling out the candidate's "
            f"template, so taking the candidate down would not bring stable back; {rollback}"
        ),
        ("retry", Phase.PROMOTING): (
            "nothing failed: promotion is under way; if the new version is bad, "
            f"{rollback} once it is done"
        ),
        ("abort", Phase.PROMOTED): f"no rollout is under way: {rollback}",
        ("abort", Phase.ABORTED): (
            "the rollout is already aborted and stable serves; "
            f"`tether rollout retry {app}` rolls the version out again"
        ),
        ("promote", Phase.PROMOTING): (
            "promotion is already under way; `tether rollout status` shows when it is done"
        ),
        ("promote", Phase.PROMOTED): (
            "no rollout is under way: push a new version to Git to start one"
        ),
        ("promote", Phase.ABORTED): (
            f"the version was aborted: `tether rollout retry {app}` rolls it out again from "
            "step 0, and pushing a fix starts a new rollout"
        ),
        ("retry", Phase.PROMOTED): ("no rollout failed: push a new version to Git to start one"),
    }
    steer = (
        f"`tether rollout promote {app}` goes past the step, "
        f"`tether rollout abort {app}` takes the candidate down"
    )
    if phase is Phase.PAUSED:
        return f"nothing failed: the rollout waits at a pause; {steer}"
    return instead.get(
        (action, phase), f"nothing failed: the rollout is {phase.value} and goes on; {steer}"
    )


def _handle_request(run: _Run, request: RolloutRequest) -> None:
    """A person's promote / abort / retry, acted on once, recorded as their decision (the
    name the gesture claims, marked unverified: decision 0032); one the rollout's phase does
    not allow is refused, and the Event says what to do instead."""
    status = run.status
    who, actor = request.who, request.by or "unknown user"
    why = request.reason or f"`tether rollout {request.action}`"
    refused = refusal(request.action, status.phase)
    if refused:
        message = f"{request.action} by {who} refused in phase {status.phase.value}: {refused}"
        run.event("Warning", "RolloutRequestRefused", message)
        return
    if request.action == "promote":
        skipped = _describe(run.spec, status.step)
        run.decide("promoted", f"{why}: skipped {skipped}", actor, request)
        run.move(status.step + 1, Phase.PROGRESSING, f"promoted by {who}")
        run.event("Normal", "RolloutPromotedByHand", f"{who} promoted past {skipped}")
        return
    if request.action == "abort":
        _abort(run, f"aborted by {who}: {why}", (), actor, request)
        return
    run.status = replace(status, aborted=())
    _start(run, "RolloutRetried", f"retried by {who}: {why}")
    run.decide("retried", why, actor, request)


def _describe(spec: DeliverySpec, step: int) -> str:
    steps = spec.steps
    return f"step {step} ({steps[step].describe()})" if step < len(steps) else "the last step"


def _step(run: _Run) -> bool:
    """Move the rollout one step if it can; False when it must wait (or is idle)."""
    status = run.status
    if status.phase is Phase.PROMOTING:
        return _promoting(run)
    if status.phase is not Phase.PROGRESSING:
        return False
    steps = run.spec.steps
    if status.step >= len(steps):
        run.status = replace(status, weight=100)
        run.move(status.step, Phase.PROMOTING, "every step passed: promoting")
        run.decide("promoting", "every step passed")
        return True
    step = steps[status.step]
    if isinstance(step, SetWeight):
        return _set_weight(run, step)
    if isinstance(step, Pause):
        return _pause(run, step)
    if isinstance(step, AnalysisStep):
        return _analysis(run, step)
    return _webhook(run, step)


def _set_weight(run: _Run, step: SetWeight) -> bool:
    run.status = replace(run.status, weight=step.weight)
    _, needed = replica_split(run.obs.total, step.weight)
    if needed > run.obs.candidate_available:
        late = _past_deadline(
            run,
            _describe(run.spec, run.status.step),
            run.spec.candidate_name,
            run.obs.candidate_ready,
            needed,
        )
        if late:
            _fail(run, late, None)
            return False
        run.status = replace(run.status, message=f"waiting for the candidate at {step.weight}%")
        run.actions.append(WakeUp(POLL_SECONDS))
        return False
    run.event("Normal", "RolloutStep", f"step {run.status.step}: weight {step.weight}%")
    run.move(run.status.step + 1)
    return True


def _past_deadline(run: _Run, where: str, deployment: str, ready: int, needed: int) -> str:
    """Why the step failed when ``deployment`` has not had ``needed`` replicas available within
    the progress deadline, counted from the step's start as the status records it (a resumed
    rollout keeps its clock); "" while there is time left."""
    status, deadline = run.status, run.spec.progress_deadline
    started = _started(status, run.obs.now)
    if (run.obs.now - started).total_seconds() < deadline:
        return ""
    return (
        f"progress deadline of {deadline:g}s passed at {where}: "
        f"Deployment {deployment} has {ready} of {needed} replicas Ready"
    )


def _started(status: RolloutStatus, now: datetime) -> datetime:
    return datetime.fromisoformat(status.step_started_at) if status.step_started_at else now


def _pause(run: _Run, step: Pause) -> bool:
    status = run.status
    if step.duration is None:
        if status.phase is not Phase.PAUSED:
            message = f"paused at step {status.step}: `tether rollout promote` goes on"
            run.status = replace(status, phase=Phase.PAUSED, message=message)
            run.event("Normal", "RolloutPaused", message)
        return False
    started = _started(status, run.obs.now)
    left = (started + timedelta(seconds=step.duration) - run.obs.now).total_seconds()
    if left > 0:
        run.status = replace(status, message=f"pausing {step.duration:g}s at step {status.step}")
        run.actions.append(WakeUp(left))
        return False
    run.move(status.step + 1)
    return True


def _analysis(run: _Run, step: AnalysisStep) -> bool:
    status = run.status
    seen = run.obs.analysis if run.obs.analysis and run.obs.analysis.step == status.step else None
    current = seen or (
        status.analysis if status.analysis and status.analysis.step == status.step else None
    )
    if current is None or not current.finished:
        current = current or AnalysisStatus(status.step, "-".join(step.templates))
        run.status = replace(
            status,
            analysis=current,
            message=f"analysis {current.name} running at step {status.step}",
        )
        run.actions.append(StartAnalysis(status.step, step))
        return False
    run.status = replace(status, analysis=current)
    detail = "; ".join(current.reasons) or current.phase
    verdict = _verdict(current)
    if verdict == "passed":
        run.decide("passed", f"analysis {current.name}: {detail}")
        run.event("Normal", "AnalysisSuccessful", f"analysis {current.name} passed: {detail}")
        run.move(status.step + 1)
        return True
    if verdict == "undecided":
        message = (
            f"analysis {current.name} was {current.phase.lower()} at step {status.step}: "
            f"{detail}; "
            "`tether rollout promote` goes on, `tether rollout abort` rolls back"
        )
        run.status = replace(run.status, phase=Phase.INCONCLUSIVE, message=message)
        run.decide("paused", f"analysis {current.name} {current.phase.lower()}: {detail}")
        run.event("Warning", "AnalysisInconclusive", message)
        run.alert("RolloutInconclusive", "warning", message)
        return False
    _fail(run, f"analysis {current.name} {current.phase.lower()}: {detail}", current)
    return False


def _verdict(analysis: AnalysisStatus) -> str:
    """What a finished analysis means for the rollout: passed, undecided (it pauses and
    alerts) or failed (``onFailure`` applies)."""
    if analysis.phase == _SUCCESSFUL:
        return "passed"
    if analysis.phase in _UNDECIDED and not analysis.refused:
        return "undecided"
    return "failed"


def aborts_at_once(spec: DeliverySpec, analysis: AnalysisStatus) -> bool:
    """True when ``analysis``' verdict will abort ``spec``'s rollout (it failed and
    ``onFailure`` is rollback): the runner may restore stable before the pass that records
    the abort (decision 0032)."""
    return (
        analysis.finished
        and _verdict(analysis) == "failed"
        and spec.on_failure is OnFailure.ROLLBACK
    )


def _webhook(run: _Run, step: Webhook) -> bool:
    status = run.status
    answer = run.obs.gate if run.obs.gate and run.obs.gate.step == status.step else None
    answer = answer or (status.gate if status.gate and status.gate.step == status.step else None)
    if answer is None or answer.outcome is GateOutcome.CALLING:
        run.status = replace(
            status, gate=answer, message=f"asking {step.url} at step {status.step}"
        )
        run.actions.append(CallWebhook(status.step, step))
        return False
    run.status = replace(status, gate=answer)
    if answer.outcome is GateOutcome.INCONCLUSIVE:
        message = (
            f"webhook {step.url} could not answer at step {status.step}: {answer.message}; "
            "`tether rollout promote` goes on, `tether rollout abort` rolls back"
        )
        run.status = replace(run.status, phase=Phase.INCONCLUSIVE, message=message)
        run.decide("paused", f"webhook {step.url} inconclusive: {answer.message}")
        run.event("Warning", "WebhookInconclusive", message)
        run.alert("RolloutInconclusive", "warning", message)
        return False
    if answer.passed:
        run.decide("passed", f"webhook {step.url}: {answer.message}")
        run.event("Normal", "WebhookPassed", f"webhook {step.url}: {answer.message}")
        run.move(status.step + 1)
        return True
    _fail(run, f"webhook {step.url} refused: {answer.message}", None)
    return False


def _fail(run: _Run, reason: str, analysis: AnalysisStatus | None) -> None:
    evidence = _evidence(analysis)
    if run.spec.on_failure is OnFailure.FREEZE:
        message = (
            f"{reason}; onFailure is freeze: nothing rolled back, the candidate stays at "
            f"{run.status.weight}% (`tether rollout retry`, `promote` or `abort`)"
        )
        run.status = replace(run.status, phase=Phase.FROZEN, message=message)
        run.decide("frozen", reason)
        run.event("Warning", "RolloutFrozen", message)
        run.alert("RolloutFrozen", "error", message)
        return
    _abort(run, reason, evidence, AGENT)


def _abort(
    run: _Run,
    reason: str,
    evidence: tuple[str, ...],
    actor: str,
    request: RolloutRequest | None = None,
) -> None:
    candidate = run.status.candidate
    digest = candidate.digest if candidate else ""
    message = f"{reason}; the candidate was taken down, stable serves"
    run.status = replace(
        run.status,
        phase=Phase.ABORTED,
        weight=0,
        message=message,
        aborted=(*run.status.aborted, digest) if digest else run.status.aborted,
    )
    run.decide("aborted", reason, actor, request)
    run.actions.append(Abort(reason, evidence, actor, request))
    run.event("Warning", "RolloutAborted", message)
    run.alert("RolloutAborted", "error", message)


def _evidence(analysis: AnalysisStatus | None) -> tuple[str, ...]:
    """Lines a person reads in the revert PR: the verdicts and the last measurements."""
    if analysis is None:
        return ()
    lines = list(analysis.reasons)
    for measured in analysis.measurements[-10:]:
        lines.append(
            f"{measured.get('finishedAt', '')} {measured.get('metric', '')}: "
            f"{measured.get('phase', '')} value={measured.get('value')!r} "
            f"{measured.get('message', '')}".strip()
        )
    return tuple(lines)


def _promoting(run: _Run) -> bool:
    """The Git name rolls out the candidate's template (the candidate still serves beside it);
    past the progress deadline without it, ``onFailure`` applies as at any step (decision
    0030): rollback puts the stable template back on the Git name, freeze holds both as they
    are."""
    if not run.obs.promoted_ready:
        late = _past_deadline(
            run,
            "promotion",
            run.spec.target.name,
            run.obs.promoted_ready_replicas,
            run.obs.total,
        )
        if late:
            _fail(run, late, None)
            return False
        run.status = replace(
            run.status, message="promoting: the stable name rolls out the candidate"
        )
        run.actions.append(WakeUp(POLL_SECONDS))
        return False
    candidate = run.status.candidate
    revision = candidate.revision if candidate else ""
    run.decide("promoted", f"{revision} serves under the Git name")
    run.status = replace(run.status, stable=candidate, candidate=None, weight=0)
    run.move(0, Phase.PROMOTED, f"promoted {revision}")
    run.event("Normal", "RolloutPromoted", f"promoted {revision}")
    run.alert("RolloutPromoted", "info", f"promoted {revision}")
    return False


__all__ = [
    "ACCEPTED",
    "Abort",
    "Action",
    "Advance",
    "Alert",
    "CallWebhook",
    "Decision",
    "Event",
    "GateStatus",
    "StartAnalysis",
    "WakeUp",
    "aborts_at_once",
    "advance",
    "refusal",
    "replica_split",
]
