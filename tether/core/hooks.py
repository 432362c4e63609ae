"""Helm chart hooks, as Tether maps them onto a sync (decision record 0016).

A chart marks an object as a hook with the annotation ``helm.sh/hook: <event>[,<event>…]``.
Tether has no release lifecycle of its own: a sync applies what the chart renders. So each hook
is placed at a point of the sync instead of an event of a release:

    pre-install, pre-upgrade     PRE:  applied before the chart's other objects (after CRDs and
                                       Namespaces), and waited for until healthy (a Job: complete)
    post-install, post-upgrade   POST: applied once the chart's other objects are healthy
    test, test-success, …        never rendered (``helm template --skip-tests``), never run
    pre-delete, post-delete,
    pre-rollback, post-rollback  refused: a sync never deletes or rolls back a release

An object whose events are all unsupported is refused with ``unsupported_events``; an object
with both a supported and an unsupported event is kept for the supported one and the others are
named in ``ignored_events`` (a common chart idiom is ``pre-install,pre-delete``). Within a phase,
``helm.sh/hook-weight`` orders hooks (lowest first, each weight waited for before the next).
Pure: no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

HOOK_ANNOTATION = "helm.sh/hook"
WEIGHT_ANNOTATION = "helm.sh/hook-weight"


class HookPhase(enum.Enum):
    """Where in a sync a hook object is applied."""

    PRE = "pre"
    POST = "post"


_PHASES = {
    "pre-install": HookPhase.PRE,
    "pre-upgrade": HookPhase.PRE,
    "post-install": HookPhase.POST,
    "post-upgrade": HookPhase.POST,
}
TEST_EVENTS = frozenset({"test", "test-success", "test-failure"})
UNSUPPORTED_EVENTS = frozenset({"pre-delete", "post-delete", "pre-rollback", "post-rollback"})


def _annotations(body: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def hook_events(body: Mapping[str, Any]) -> list[str]:
    """The events of ``helm.sh/hook`` on ``body``, in order; empty when it is no hook."""
    value = _annotations(body).get(HOOK_ANNOTATION)
    if not isinstance(value, str):
        return []
    return [event.strip() for event in value.split(",") if event.strip()]


def hook_phase(body: Mapping[str, Any]) -> HookPhase | None:
    """The phase ``body`` is applied in, or None for an ordinary object. A hook with both a
    pre- and a post- event is a PRE hook (it must exist before the rest runs)."""
    phases = {_PHASES[e] for e in hook_events(body) if e in _PHASES}
    if HookPhase.PRE in phases:
        return HookPhase.PRE
    return HookPhase.POST if phases else None


def is_test_hook(body: Mapping[str, Any]) -> bool:
    """True for a chart test (``helm test``): Tether never applies one."""
    return any(event in TEST_EVENTS for event in hook_events(body))


def unsupported_events(body: Mapping[str, Any]) -> list[str]:
    """The events that make ``body`` a hook Tether refuses: non-empty only when it has no
    supported event at all (unknown events count as unsupported)."""
    events = hook_events(body)
    if not events or any(e in _PHASES or e in TEST_EVENTS for e in events):
        return []
    return events


def ignored_events(body: Mapping[str, Any]) -> list[str]:
    """The events of a kept hook that Tether does not act on (e.g. ``pre-delete``)."""
    events = hook_events(body)
    if not any(e in _PHASES for e in events):
        return []
    return [e for e in events if e not in _PHASES]


def hook_weight(body: Mapping[str, Any]) -> int:
    """``helm.sh/hook-weight`` as an integer (0 when absent or not a number, as in Helm)."""
    value = _annotations(body).get(WEIGHT_ANNOTATION)
    try:
        return int(str(value).strip()) if value is not None else 0
    except ValueError:
        return 0


def vanishes_when_finished(body: Mapping[str, Any]) -> bool:
    """A Job the cluster deletes once it has finished (``spec.ttlSecondsAfterFinished``), as
    many charts' hook Jobs are: being gone afterwards is its normal state, not drift."""
    spec = body.get("spec")
    return (
        body.get("kind") == "Job"
        and str(body.get("apiVersion", "")).startswith("batch/")
        and isinstance(spec, Mapping)
        and spec.get("ttlSecondsAfterFinished") is not None
    )
