"""The rollout machine, pure: every transition from (spec, status, observations), no cluster."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tether.delivery.machine import (
    Abort,
    Alert,
    CallWebhook,
    Decision,
    Event,
    StartAnalysis,
    WakeUp,
    aborts_at_once,
    advance,
    refusal,
    replica_split,
)
from tether.delivery.model import (
    AnalysisStatus,
    DeliveryError,
    DeliverySpec,
    GateStatus,
    Observations,
    Phase,
    RolloutRequest,
    RolloutStatus,
    Version,
    read_delivery,
    read_request,
    request_writer,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STABLE = Version("aaa111", "stable-digest")
HEAD = Version("bbb222", "head-digest")


def canary(steps: list[dict], on_failure: str = "rollback") -> DeliverySpec:
    (spec,) = read_delivery(
        [
            {
                "target": {"kind": "Deployment", "name": "web"},
                "onFailure": on_failure,
                "canary": {"steps": steps},
            }
        ],
        "team/shop",
    )
    return spec


def seen(**changes: object) -> Observations:
    base = Observations(now=T0, head=HEAD, serving=STABLE, total=4, candidate_available=0)
    return replace(base, **changes)  # type: ignore[arg-type]


STEPS = [
    {"setWeight": 25},
    {"pause": {"duration": "30s"}},
    {"analysis": {"templates": [{"templateName": "error-rate"}]}},
    {"setWeight": 100},
]


def test_a_first_deploy_is_applied_as_rendered_with_no_rollout() -> None:
    result = advance(canary(STEPS), None, seen(serving=None))
    assert result.status.phase is Phase.PROMOTED
    assert result.status.stable == HEAD
    assert result.actions == ()


def test_a_new_template_starts_a_rollout_and_waits_for_the_candidate() -> None:
    result = advance(canary(STEPS), None, seen())
    status = result.status
    assert (status.phase, status.step, status.weight) == (Phase.PROGRESSING, 0, 25)
    assert status.candidate == HEAD and status.stable == STABLE
    assert [a.decision for a in result.actions if isinstance(a, Decision)] == ["started"]
    assert any(isinstance(a, WakeUp) for a in result.actions)


def test_the_weight_step_passes_once_the_candidate_share_is_available() -> None:
    started = advance(canary(STEPS), None, seen()).status
    # 25 % of 4 replicas: one candidate replica
    result = advance(canary(STEPS), started, seen(candidate_available=1))
    assert result.status.step == 1  # now pausing 30 s
    assert result.status.phase is Phase.PROGRESSING
    assert [a.after for a in result.actions if isinstance(a, WakeUp)] == [30.0]


def test_a_timed_pause_ends_after_its_duration_and_analysis_starts() -> None:
    spec = canary(STEPS)
    at_pause = advance(spec, advance(spec, None, seen()).status, seen(candidate_available=1))
    later = seen(now=T0 + timedelta(seconds=31), candidate_available=1)
    result = advance(spec, at_pause.status, later)
    assert result.status.step == 2
    assert [a.step for a in result.actions if isinstance(a, StartAnalysis)] == [2]


def _at_analysis(spec: DeliverySpec) -> RolloutStatus:
    status = RolloutStatus(
        phase=Phase.PROGRESSING, step=2, weight=25, candidate=HEAD, stable=STABLE
    )
    return status.at_step(2, T0)


def test_a_successful_analysis_moves_on_and_the_rollout_promotes() -> None:
    spec = canary(STEPS)
    passed = AnalysisStatus(2, "error-rate", "Successful", (), ("error-rate: Successful",))
    result = advance(
        spec, replace(_at_analysis(spec), analysis=passed), seen(candidate_available=1)
    )
    # step 3, setWeight 100: all 4 replicas on the candidate first
    assert (result.status.step, result.status.weight) == (3, 100)
    full = advance(spec, result.status, seen(candidate_available=4))
    assert full.status.phase is Phase.PROMOTING
    done = advance(spec, full.status, seen(candidate_available=4, promoted_ready=True))
    assert done.status.phase is Phase.PROMOTED
    assert done.status.stable == HEAD and done.status.candidate is None
    assert any(isinstance(a, Alert) and a.event == "RolloutPromoted" for a in done.actions)


def test_a_failed_analysis_aborts_with_its_evidence() -> None:
    spec = canary(STEPS)
    failed = AnalysisStatus(
        2,
        "error-rate",
        "Failed",
        ({"metric": "error-rate", "phase": "Failed", "value": [0.4], "finishedAt": "t"},),
        ("error-rate: Failed (1 measurement failed)",),
    )
    result = advance(spec, replace(_at_analysis(spec), analysis=failed), seen())
    assert result.status.phase is Phase.ABORTED
    assert result.status.weight == 0
    assert HEAD.digest in result.status.aborted
    (abort,) = [a for a in result.actions if isinstance(a, Abort)]
    assert "error-rate" in abort.reason and any("0.4" in line for line in abort.evidence)
    # the aborted head is not rolled out again while Git still points at it
    again = advance(spec, result.status, seen())
    assert again.status.phase is Phase.ABORTED and again.actions == ()


def test_on_failure_freeze_keeps_the_candidate_and_alerts() -> None:
    spec = canary(STEPS, on_failure="freeze")
    failed = AnalysisStatus(2, "error-rate", "Failed", (), ("error-rate: Failed",))
    result = advance(spec, replace(_at_analysis(spec), analysis=failed), seen())
    assert result.status.phase is Phase.FROZEN
    assert result.status.weight == 25  # nothing moved back
    assert not any(isinstance(a, Abort) for a in result.actions)
    assert any(isinstance(a, Alert) and a.event == "RolloutFrozen" for a in result.actions)


def test_an_inconclusive_analysis_pauses_and_alerts_and_promote_goes_on() -> None:
    spec = canary(STEPS)
    unsure = AnalysisStatus(2, "error-rate", "Inconclusive", (), ("no data",))
    paused = advance(spec, replace(_at_analysis(spec), analysis=unsure), seen())
    assert paused.status.phase is Phase.INCONCLUSIVE
    assert any(isinstance(a, Alert) and a.event == "RolloutInconclusive" for a in paused.actions)
    # it never passes by itself
    assert advance(spec, paused.status, seen()).status.phase is Phase.INCONCLUSIVE
    promote = RolloutRequest("promote", "2026-11-27T12:01:00Z", "alice", "checked by hand")
    result = advance(spec, paused.status, seen(request=promote, candidate_available=1))
    assert result.status.step == 3
    (decision,) = [a for a in result.actions if isinstance(a, Decision)]
    assert (decision.actor, decision.decision) == ("alice", "promoted")
    assert "checked by hand" in decision.reason
    # the same gesture is acted on once
    again = advance(spec, replace(result.status, step=2), seen(request=promote))
    assert again.status.step == 2


def test_an_indefinite_pause_waits_for_promote() -> None:
    spec = canary([{"pause": {}}, {"setWeight": 100}])
    paused = advance(spec, None, seen())
    assert paused.status.phase is Phase.PAUSED
    assert advance(spec, paused.status, seen(now=T0 + timedelta(hours=1))).status.phase is (
        Phase.PAUSED
    )
    go = RolloutRequest("promote", "x", "bob")
    assert advance(spec, paused.status, seen(request=go)).status.step == 1


def test_abort_by_hand_and_retry() -> None:
    spec = canary(STEPS)
    running = advance(spec, None, seen()).status
    aborted = advance(spec, running, seen(request=RolloutRequest("abort", "1", "carol", "pager")))
    assert aborted.status.phase is Phase.ABORTED
    (abort,) = [a for a in aborted.actions if isinstance(a, Abort)]
    assert abort.actor == "carol" and "pager" in abort.reason
    retried = advance(spec, aborted.status, seen(request=RolloutRequest("retry", "2", "carol")))
    assert (retried.status.phase, retried.status.step) == (Phase.PROGRESSING, 0)
    assert retried.status.aborted == ()


def test_an_abort_once_promotion_has_begun_is_refused_and_names_tether_rollback() -> None:
    spec = canary(STEPS)
    promoting = RolloutStatus(
        phase=Phase.PROMOTING, step=4, weight=100, candidate=HEAD, stable=STABLE
    ).at_step(4, T0)
    abort = RolloutRequest("abort", "1", "erin", "looks slow")
    result = advance(spec, promoting, seen(request=abort, candidate_available=4))
    assert result.status.phase is Phase.PROMOTING and result.status.handled_action == "abort@1"
    assert not any(isinstance(a, (Abort, Decision)) for a in result.actions)
    (event,) = [a for a in result.actions if isinstance(a, Event)]
    assert (event.type, event.reason) == ("Warning", "RolloutRequestRefused")
    assert "erin" in event.message and "`tether rollback APP --reason ...`" in event.message


@pytest.mark.parametrize("action", ["promote", "abort", "retry"])
@pytest.mark.parametrize("phase", list(Phase))
def test_every_gesture_a_phase_refuses_says_what_to_do_instead(action: str, phase: Phase) -> None:
    said = refusal(action, phase, "web")
    acts = {
        "promote": (Phase.PROGRESSING, Phase.PAUSED, Phase.INCONCLUSIVE, Phase.FROZEN),
        "abort": (Phase.PROGRESSING, Phase.PAUSED, Phase.INCONCLUSIVE, Phase.FROZEN),
        "retry": (Phase.ABORTED, Phase.FROZEN, Phase.INCONCLUSIVE),
    }[action]
    if phase in acts:
        assert said == ""
        return
    # a way forward: a command to run (never the refused one), or a push to Git
    suggested = [
        c
        for c in (
            "rollback web",
            "rollout retry web",
            "rollout promote web",
            "rollout abort web",
            "rollout status",
        )
        if f"`tether {c}" in said
    ]
    assert suggested or "push a new version" in said, said
    assert f"`tether rollout {action} web`" not in said


def test_only_a_failed_verdict_with_on_failure_rollback_restores_stable_at_once() -> None:
    failed = AnalysisStatus(2, "error-rate", "Failed", (), ("error-rate: Failed",))
    refused = AnalysisStatus(2, "error-rate", "Error", (), ("forbidden",), refused=True)
    assert aborts_at_once(canary(STEPS), failed)
    assert aborts_at_once(canary(STEPS), refused)  # a refused Job fails, never pauses
    assert not aborts_at_once(canary(STEPS, "freeze"), failed)
    for phase in ("Successful", "Inconclusive", "Error", "Running"):
        assert not aborts_at_once(canary(STEPS), replace(failed, phase=phase))


def test_the_webhook_gate_is_called_then_judged() -> None:
    spec = canary([{"webhook": {"url": "https://gate.example/check"}}, {"setWeight": 100}])
    asking = advance(spec, None, seen())
    assert [a.step for a in asking.actions if isinstance(a, CallWebhook)] == [0]
    refused = replace(asking.status, gate=GateStatus(0, False, "POST https://gate.example: 403"))
    result = advance(spec, refused, seen())
    assert result.status.phase is Phase.ABORTED
    passed = replace(asking.status, gate=GateStatus(0, True, "200"))
    assert advance(spec, passed, seen()).status.step == 1


def test_git_going_back_to_stable_cancels_the_rollout() -> None:
    spec = canary(STEPS)
    running = advance(spec, None, seen()).status
    result = advance(spec, running, seen(head=STABLE))
    assert result.status.phase is Phase.PROMOTED and result.status.candidate is None


def test_a_newer_commit_restarts_the_rollout_at_step_zero() -> None:
    spec = canary(STEPS)
    at_pause = advance(spec, advance(spec, None, seen()).status, seen(candidate_available=1))
    newer = Version("ccc333", "newer-digest")
    result = advance(spec, at_pause.status, seen(head=newer))
    assert (result.status.step, result.status.candidate) == (0, newer)


def test_status_round_trips_through_its_json_form() -> None:
    spec = canary(STEPS)
    status = advance(spec, None, seen()).status
    assert RolloutStatus.of(status.to_dict()) == status
    assert all(key in status.to_dict() for key in ("analysis", "gate", "candidate"))


@pytest.mark.parametrize(
    ("total", "weight", "split"),
    [(4, 25, (3, 1)), (4, 50, (2, 2)), (1, 20, (1, 1)), (10, 0, (10, 0)), (3, 100, (0, 3))],
)
def test_replica_split(total: int, weight: int, split: tuple[int, int]) -> None:
    assert replica_split(total, weight) == split


def test_spec_mistakes_name_the_app_and_the_entry() -> None:
    with pytest.raises(DeliveryError, match=r"App team/shop: spec.delivery\[0\].*duration"):
        read_delivery(
            [{"target": {"name": "web"}, "canary": {"steps": [{"pause": {"duration": "5x"}}]}}],
            "team/shop",
        )
    with pytest.raises(DeliveryError, match="exactly one of canary and blueGreen"):
        read_delivery([{"target": {"name": "web"}}], "team/shop")


def test_rollout_requests_are_read_from_the_annotation() -> None:
    request = read_request(
        {
            "tether.dev/rollout-action": "promote@2026-11-27T12:00:00Z",
            "tether.dev/rollout-action-by": "alice",
        }
    )
    assert request is not None and (request.action, request.by) == ("promote", "alice")
    assert read_request({"tether.dev/rollout-action": "explode@now"}) is None


def test_an_aborted_head_held_back_by_quarantine_stays_aborted_until_git_moves() -> None:
    spec = canary(STEPS)
    running = advance(spec, None, seen()).status
    aborted = advance(spec, running, seen(request=RolloutRequest("abort", "1", "dan"))).status
    # the quarantine gives the stable render for the same (bad) head commit
    held = advance(spec, aborted, seen(head=Version(HEAD.revision, STABLE.digest)))
    assert held.status.phase is Phase.ABORTED
    # the revert merged: a new commit rendering the stable template
    reverted = advance(spec, aborted, seen(head=Version("ddd444", STABLE.digest)))
    assert reverted.status.phase is Phase.PROMOTED and reverted.status.candidate is None


def test_an_analysis_error_pauses_like_inconclusive_and_never_aborts() -> None:
    spec = canary(STEPS)
    broken = AnalysisStatus(2, "error-rate", "Error", (), ("prometheus unreachable",))
    result = advance(spec, replace(_at_analysis(spec), analysis=broken), seen())
    assert result.status.phase is Phase.INCONCLUSIVE
    assert not any(isinstance(a, Abort) for a in result.actions)
    assert "error" in result.status.message


def test_a_person_s_decision_records_the_claimed_name_and_the_recorded_writer_unverified() -> None:
    managed = [
        {"manager": "tether", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
        {
            "manager": "kubectl-annotate",
            "operation": "Update",
            "time": "2026-11-28T08:00:00Z",
            "fieldsV1": {
                "f:metadata": {
                    "f:annotations": {
                        "f:tether.dev/rollout-action": {},
                        "f:tether.dev/rollout-action-by": {},
                    }
                }
            },
        },
    ]
    writer = request_writer(managed)
    assert writer == "kubectl-annotate (Update at 2026-11-28T08:00:00Z)"
    assert request_writer(managed[:1]) == ""
    request = read_request(
        {"tether.dev/rollout-action": "abort@1", "tether.dev/rollout-action-by": "mallory"},
        writer,
    )
    assert request is not None
    spec = canary(STEPS)
    result = advance(spec, advance(spec, None, seen()).status, seen(request=request))
    (decision,) = [a for a in result.actions if isinstance(a, Decision)]
    assert decision.actor == "mallory" and decision.request == request
    assert request.provenance() == {
        "claimedBy": "mallory",
        "writtenWith": writer,
        "verified": False,
    }
    (abort,) = [a for a in result.actions if isinstance(a, Abort)]
    assert abort.request == request
    (aborted,) = [
        a for a in result.actions if isinstance(a, Event) and a.reason == "RolloutAborted"
    ]
    assert "aborted by mallory (claimed, unverified)" in aborted.message
