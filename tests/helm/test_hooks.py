"""How chart hooks map onto a sync (decision record 0016): the pure classification."""

from __future__ import annotations

import pytest

from tether.core.hooks import (
    HookPhase,
    hook_phase,
    hook_weight,
    ignored_events,
    is_test_hook,
    unsupported_events,
)


def hook(events: str | None, weight: str | None = None) -> dict:
    annotations = {}
    if events is not None:
        annotations["helm.sh/hook"] = events
    if weight is not None:
        annotations["helm.sh/hook-weight"] = weight
    return {"kind": "Job", "metadata": {"name": "x", "annotations": annotations}}


@pytest.mark.parametrize(
    ("events", "phase"),
    [
        (None, None),
        ("pre-install", HookPhase.PRE),
        ("pre-upgrade", HookPhase.PRE),
        (" post-install , post-upgrade ", HookPhase.POST),
        ("post-install,pre-upgrade", HookPhase.PRE),
        ("pre-install,pre-delete", HookPhase.PRE),
        ("pre-delete", None),
        ("test", None),
    ],
)
def test_install_and_upgrade_events_choose_the_phase(events: str | None, phase: object) -> None:
    assert hook_phase(hook(events)) is phase


def test_delete_and_rollback_only_hooks_are_refused_and_kept_otherwise() -> None:
    assert unsupported_events(hook("pre-delete,post-rollback")) == ["pre-delete", "post-rollback"]
    assert unsupported_events(hook("made-up")) == ["made-up"]
    assert unsupported_events(hook("pre-install,pre-delete")) == []
    assert ignored_events(hook("pre-install,pre-delete")) == ["pre-delete"]
    assert unsupported_events(hook("test")) == []
    assert is_test_hook(hook("test-success")) and not is_test_hook(hook("pre-install"))
    assert unsupported_events({"metadata": {"annotations": None}}) == []


def test_weights_are_integers_and_default_to_zero_like_helm() -> None:
    assert hook_weight(hook("pre-install", "-5")) == -5
    assert hook_weight(hook("pre-install", " 3 ")) == 3
    assert hook_weight(hook("pre-install", "soon")) == 0
    assert hook_weight(hook("pre-install")) == 0
