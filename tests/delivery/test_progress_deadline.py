"""The progress deadline, pure: a step whose candidate never has its replicas Ready fails once
the deadline counted from the step's recorded start has passed, per ``onFailure``, and a
rollout resumed from its written status keeps that clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.delivery.test_machine import HEAD, T0, seen
from tether.delivery.bluegreen import machine_spec
from tether.delivery.machine import Abort, Decision, WakeUp, advance
from tether.delivery.model import (
    PROGRESS_DEADLINE_SECONDS,
    DeliveryError,
    DeliverySpec,
    Phase,
    RolloutRequest,
    RolloutStatus,
    read_delivery,
)


def spec(
    deadline: str | None = "2m", on_failure: str = "rollback", **strategy: object
) -> DeliverySpec:
    entry: dict[str, object] = {"target": {"name": "web"}, "onFailure": on_failure, **strategy}
    if deadline is not None:
        entry["progressDeadline"] = deadline
    (read,) = read_delivery([entry], "team/shop")
    return read


CANARY = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
BLUE_GREEN = {"blueGreen": {"activeService": "web", "previewService": "web-preview"}}


def test_the_deadline_is_read_from_the_spec_and_defaults_like_a_deployments() -> None:
    assert spec("90s", **CANARY).progress_deadline == 90.0
    assert spec(None, **CANARY).progress_deadline == PROGRESS_DEADLINE_SECONDS == 600.0
    with pytest.raises(DeliveryError, match=r"spec.delivery\[0\].progressDeadline"):
        spec("soon", **CANARY)


def test_a_canary_waits_for_its_candidate_until_the_deadline_then_rolls_back() -> None:
    canary = spec(**CANARY)
    started = advance(canary, None, seen()).status
    assert started.phase is Phase.PROGRESSING and started.step_started_at == T0.isoformat()

    waiting = advance(canary, started, seen(now=T0 + timedelta(seconds=119), candidate_ready=1))
    assert waiting.status.phase is Phase.PROGRESSING
    assert any(isinstance(a, WakeUp) for a in waiting.actions)

    late = advance(canary, waiting.status, seen(now=T0 + timedelta(seconds=120), candidate_ready=1))
    assert late.status.phase is Phase.ABORTED
    [abort] = [a for a in late.actions if isinstance(a, Abort)]
    assert "progress deadline of 120s" in abort.reason
    assert "Deployment web-canary has 1 of 2 replicas Ready" in abort.reason
    assert HEAD.digest in late.status.aborted


def test_a_freeze_holds_the_candidate_when_the_deadline_passes() -> None:
    canary = spec(on_failure="freeze", **CANARY)
    started = advance(canary, None, seen()).status
    late = advance(canary, started, seen(now=T0 + timedelta(minutes=5)))
    assert late.status.phase is Phase.FROZEN
    assert "Deployment web-canary has 0 of 2 replicas Ready" in late.status.message
    assert not any(isinstance(a, Abort) for a in late.actions)
    assert [a.decision for a in late.actions if isinstance(a, Decision)] == ["frozen"]


def test_a_candidate_ready_in_time_moves_on() -> None:
    canary = spec(**CANARY)
    started = advance(canary, None, seen()).status
    ready = advance(
        canary, started, seen(now=T0 + timedelta(seconds=60), candidate_available=2)
    ).status
    assert (ready.phase, ready.step) == (Phase.PAUSED, 1)
    # a pause is a person's wait, not a replica's: no deadline there
    later = advance(canary, ready, seen(now=T0 + timedelta(hours=2), candidate_available=2))
    assert later.status.phase is Phase.PAUSED


def test_a_blue_green_preview_never_ready_aborts_naming_the_preview() -> None:
    blue_green = machine_spec(spec("30s", **BLUE_GREEN))
    started = advance(blue_green, None, seen()).status
    late = advance(blue_green, started, seen(now=T0 + timedelta(seconds=31), candidate_ready=0))
    assert late.status.phase is Phase.ABORTED
    assert "Deployment web-preview has 0 of 4 replicas Ready" in late.status.message


def test_a_resumed_rollout_keeps_its_clock_from_the_written_status() -> None:
    canary = spec(**CANARY)
    started = advance(canary, None, seen()).status
    # another replica starts from the status as the App holds it, 3 minutes later
    written = RolloutStatus.of(started.to_dict())
    assert written is not None and written.step_started_at == started.step_started_at
    resumed = advance(canary, written, seen(now=T0 + timedelta(minutes=3)))
    assert resumed.status.phase is Phase.ABORTED
    # and a restarted step (a newer version) gets a clock of its own
    newer = replace(HEAD, revision="ccc333", digest="newer-digest")
    restarted = advance(canary, resumed.status, seen(now=T0 + timedelta(minutes=3), head=newer))
    assert restarted.status.phase is Phase.PROGRESSING
    assert restarted.status.step_started_at == (T0 + timedelta(minutes=3)).isoformat()


def _promoting(delivery: DeliverySpec) -> RolloutStatus:
    """``delivery``'s rollout at its promotion, started at T0 (every step passed)."""
    status = advance(delivery, None, seen(candidate_available=4)).status
    for _ in range(5):
        if status.phase is Phase.PROMOTING:
            return status
        status = advance(delivery, status, seen(candidate_available=4)).status
    raise AssertionError(f"not promoting: {status}")


def test_a_promotion_the_git_name_never_finishes_rolls_back_at_the_deadline() -> None:
    canary = spec(**{"canary": {"steps": [{"setWeight": 100}]}})
    promoting = _promoting(canary)
    assert promoting.step_started_at == T0.isoformat() and promoting.weight == 100

    waiting = advance(
        canary,
        promoting,
        seen(now=T0 + timedelta(seconds=119), candidate_available=4, promoted_ready_replicas=3),
    )
    assert waiting.status.phase is Phase.PROMOTING
    assert any(isinstance(a, WakeUp) for a in waiting.actions)

    # a replica that takes over reads the clock from the written status
    written = RolloutStatus.of(waiting.status.to_dict())
    late = advance(
        canary,
        written,
        seen(now=T0 + timedelta(seconds=120), candidate_available=4, promoted_ready_replicas=3),
    )
    assert late.status.phase is Phase.ABORTED and late.status.weight == 0
    [abort] = [a for a in late.actions if isinstance(a, Abort)]
    assert abort.reason == (
        "progress deadline of 120s passed at promotion: Deployment web has 3 of 4 replicas Ready"
    )
    assert HEAD.digest in late.status.aborted


def test_a_frozen_promotion_holds_and_a_promote_waits_again_with_a_new_clock() -> None:
    canary = spec(on_failure="freeze", **{"canary": {"steps": [{"setWeight": 100}]}})
    late = advance(canary, _promoting(canary), seen(now=T0 + timedelta(minutes=3)))
    assert late.status.phase is Phase.FROZEN
    assert "passed at promotion: Deployment web has 0 of 4 replicas Ready" in late.status.message
    assert not any(isinstance(a, Abort) for a in late.actions)
    # a person promotes: the promotion is waited for again, from now
    later = T0 + timedelta(minutes=4)
    request = RolloutRequest("promote", "t1", "alice")
    again = advance(canary, late.status, seen(now=later, request=request)).status
    assert again.phase is Phase.PROMOTING and again.step_started_at == later.isoformat()


def test_a_blue_green_promotion_has_the_same_deadline() -> None:
    blue_green = machine_spec(spec("30s", **BLUE_GREEN))
    promoting = _promoting(blue_green)
    late = advance(
        blue_green, promoting, seen(now=T0 + timedelta(seconds=30), candidate_available=4)
    )
    assert late.status.phase is Phase.ABORTED
    assert "passed at promotion: Deployment web has 0 of 4 replicas Ready" in late.status.message
