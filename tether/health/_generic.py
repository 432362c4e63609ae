"""Rules that hold for every kind, and the condition-based rule for custom resources.

Every object is first checked for deletion and for a controller that has not caught up with the
latest spec. Kinds Tether does not know are then judged by the ``Ready`` / ``Reconciling`` /
``Stalled`` conditions most controllers publish; an object without conditions is Healthy (a
resource with no status has nothing to wait for).
"""

from __future__ import annotations

from tether.health._fields import Condition, Fields
from tether.health._verdict import Verdict, degraded, healthy, progressing

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
    observed = live.optional_integer("status.observedGeneration")
    if observed is None and not reports_generation:
        return None
    if observed is None or observed < generation:
        return progressing(f"controller has not observed generation {generation} yet")
    return None


def _stale(condition: Condition, live: Fields) -> bool:
    """True when the condition was written for an older generation than the current spec."""
    generation = live.optional_integer("metadata.generation")
    observed = condition.observed_generation
    return generation is not None and observed is not None and observed < generation


def _looks_failed(reason: str) -> bool:
    lowered = reason.lower()
    return any(word in lowered for word in _FAILURE_WORDS)


def by_conditions(live: Fields) -> Verdict:
    """Custom resources: Stalled, then Reconciling, then Ready; nothing to go by is Healthy."""
    stalled = live.condition_is("Stalled", "True")
    if stalled is not None and not _stale(stalled, live):
        return degraded(f"stalled: {stalled.explain() or 'no reason given'}")
    reconciling = live.condition_is("Reconciling", "True")
    if reconciling is not None:
        return progressing(f"reconciling: {reconciling.explain() or 'no reason given'}")
    ready = live.condition("Ready")
    if ready is None:
        return healthy()
    if _stale(ready, live):
        return progressing("Ready condition has not been updated for the current generation")
    if ready.is_true:
        return healthy()
    why = ready.explain() or "no reason given"
    if ready.is_false and _looks_failed(ready.reason):
        return degraded(f"not ready: {why}")
    return progressing(f"not ready: {why}")


def exists(_: Fields) -> Verdict:
    """Configuration objects (ConfigMap, Secret, RBAC …): healthy as soon as they exist."""
    return healthy()
