"""Rules that hold for every kind, and the condition-based rule for custom resources.

Every object is first checked for deletion and for a controller that has not caught up with the
latest spec. Kinds Tether does not know are then judged by the conventions most controllers
follow: the ``Stalled`` / ``Reconciling`` / ``Ready`` conditions (kstatus), a ``Synced``
condition (Crossplane and others), and last a ``status.phase`` or ``status.state`` field. An
object whose status says none of these is Healthy: it has nothing to wait for. (An object with
no status at all is "not observed yet", see ``_observed``.)
"""

from __future__ import annotations

import re

from tether.health._fields import Condition, Fields
from tether.health._verdict import Verdict, degraded, detailed, healthy, progressing

# Reasons on a Ready=False condition that mean "will not get better by waiting". Matched as
# case-insensitive substrings, so ``InstallFailed``, ``ImagePullBackOff`` and
# ``ValidationError`` all count.
_FAILURE_WORDS = (
    "fail",
    "error",
    "invalid",
    "backoff",
    "denied",
    "forbidden",
    "unauthorized",
    "deadlineexceeded",
    "stalled",
    "exception",
)
# Reasons written as ``Err`` + a CamelCase word are failures too (cert-manager's
# ``ErrRegisterACMEAccount``, ``ErrInitIssuer``); "err" alone would also match ``Deferred``.
_ERR_PREFIX = re.compile(r"^Err[A-Z]")

# Words in a phase (``status.phase`` / ``status.state``) that mean failed, or still working.
_FAILED_PHASE_WORDS = ("fail", "error", "invalid", "degraded", "unhealthy", "crashloop", "abort")
_WORKING_PHASES = frozenset(
    {
        "pending",
        "progressing",
        "creating",
        "created",
        "deploying",
        "installing",
        "initializing",
        "provisioning",
        "reconciling",
        "updating",
        "upgrading",
        "inprogress",
        "waiting",
        "starting",
        "scheduling",
        "terminating",
        "deleting",
        "unknown",
        "new",
        "",
    }
)


def pending_change(live: Fields, *, reports_generation: bool) -> Verdict | None:
    """Progressing while the object is being deleted or its controller lags behind its spec.

    ``reports_generation`` marks kinds whose controller always writes
    ``status.observedGeneration``: for those, a missing value means "not observed yet".
    """
    if live.has("metadata.deletionTimestamp"):
        finalizers = [str(name) for name in live.items("metadata.finalizers")]
        waiting = f"; waiting for finalizers: {', '.join(finalizers)}" if finalizers else ""
        return progressing(f"being deleted{waiting}")
    generation = live.optional_integer("metadata.generation")
    if generation is None:
        return None
    behind = progressing(f"controller has not observed generation {generation} yet")
    if not live.has("status.observedGeneration"):
        return behind if reports_generation else None
    observed = live.generation("status.observedGeneration")
    if observed is not None and observed < generation:
        return behind
    return None  # current, or not a number (old Argo Rollouts wrote a hash): nothing to compare


def _stale(condition: Condition, live: Fields) -> bool:
    """True when the condition was written for an older generation than the current spec."""
    generation = live.optional_integer("metadata.generation")
    observed = condition.observed_generation
    return generation is not None and observed is not None and observed < generation


def looks_failed(reason: str) -> bool:
    """True when a condition's reason names a failure (see ``_FAILURE_WORDS``)."""
    lowered = reason.lower()
    return any(word in lowered for word in _FAILURE_WORDS) or bool(_ERR_PREFIX.match(reason))


def by_conditions(live: Fields) -> Verdict:
    """Custom resources: Stalled, Reconciling, Synced, Ready, then a phase; else Healthy."""
    stalled = live.condition_is("Stalled", "True")
    if stalled is not None and not _stale(stalled, live):
        return degraded(f"stalled: {stalled.explain() or 'no reason given'}")
    reconciling = live.condition_is("Reconciling", "True")
    if reconciling is not None:
        return progressing(f"reconciling: {reconciling.explain() or 'no reason given'}")
    synced = live.condition_is("Synced", "False")
    if synced is not None and not _stale(synced, live):
        if synced.reason == "ReconcilePaused":
            return healthy("reconciliation is paused")
        return degraded(f"not synced: {synced.explain() or 'no reason given'}")
    ready = live.condition("Ready")
    if ready is None:
        return _by_phase(live)
    if _stale(ready, live):
        return progressing("Ready condition has not been updated for the current generation")
    if ready.is_true:
        return healthy()
    why = ready.explain() or "no reason given"
    if ready.is_false and looks_failed(ready.reason):
        return degraded(f"not ready: {why}")
    return progressing(f"not ready: {why}")


def _by_phase(live: Fields) -> Verdict:
    """``status.phase`` (or ``status.state``): failure words → Degraded, working → Progressing."""
    for path in ("status.phase", "status.state"):
        if not live.has(path):
            continue
        phase = str(live.raw(path))
        lowered = phase.lower().replace(" ", "").replace("_", "").replace("-", "")
        detail = live.text("status.message") if isinstance(live.raw("status.message"), str) else ""
        if any(word in lowered for word in _FAILED_PHASE_WORDS):
            return degraded(detailed(f"phase is {phase}", detail))
        if lowered in _WORKING_PHASES:
            return progressing(detailed(f"phase is {phase or 'empty'}", detail))
        return healthy()
    return healthy()


def exists(_: Fields) -> Verdict:
    """Configuration objects (ConfigMap, Secret, RBAC …): healthy as soon as they exist."""
    return healthy()
