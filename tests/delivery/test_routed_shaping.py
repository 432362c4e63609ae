"""Shaping a routed canary's Deployments, pure: stable keeps the size Git asks for while the
candidate runs (the route splits the traffic), the candidate gets its weight's share, and an
aborted target is applied without the template-digest annotation, as the last good render has
it (decision 0028)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tether.core import Manifest, SourceLocation
from tether.delivery.model import (
    TEMPLATE_DIGEST_ANNOTATION,
    DeliverySpec,
    Phase,
    RolloutStatus,
    Version,
    read_delivery,
)
from tether.delivery.routing import shape_deployments
from tether.delivery.shaping import template_digest

STABLE_TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"image": "v1"}]},
}


def _head() -> Manifest:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"image": "v2"}]},
            },
        },
    }
    return Manifest(body, SourceLocation("app/web.yaml", 1))


def _spec(routed: bool) -> DeliverySpec:
    canary: dict[str, Any] = {"steps": [{"setWeight": 25}, {"pause": {}}]}
    if routed:
        canary["trafficRouting"] = {
            "gatewayAPI": {
                "httpRoute": "web",
                "stableService": "web-stable",
                "canaryService": "web-canary",
            }
        }
    (spec,) = read_delivery([{"target": {"name": "web"}, "canary": canary}], "team/shop")
    return spec


def _sizes(manifests: list[Manifest]) -> dict[str, int]:
    return {m.body["metadata"]["name"]: m.body["spec"]["replicas"] for m in manifests}


def _status(phase: Phase, weight: int) -> RolloutStatus:
    head = _head()
    return RolloutStatus(
        phase=phase,
        weight=weight,
        stable=Version("aaa", "stable-digest"),
        candidate=Version("bbb", template_digest(head)),
    )


@pytest.mark.parametrize(
    ("routed", "expected"),
    [(True, {"web": 4, "web-canary": 1}), (False, {"web": 3, "web-canary": 1})],
)
def test_a_routed_canary_keeps_stable_whole_and_an_unrouted_one_splits_replicas(
    routed: bool, expected: dict[str, int]
) -> None:
    shaped = shape_deployments(
        [_head()], _spec(routed), _status(Phase.PROGRESSING, 25), STABLE_TEMPLATE
    )
    assert _sizes(shaped) == expected


def test_a_routed_canary_at_full_weight_runs_both_sides_whole() -> None:
    shaped = shape_deployments([_head()], _spec(True), _status(Phase.PAUSED, 100), STABLE_TEMPLATE)
    assert _sizes(shaped) == {"web": 4, "web-canary": 4}


def test_an_aborted_target_is_applied_unannotated_as_a_good_render_is() -> None:
    running = shape_deployments([_head()], _spec(True), _status(Phase.PAUSED, 25), STABLE_TEMPLATE)
    web = next(m for m in running if m.body["metadata"]["name"] == "web")
    assert web.body["metadata"]["annotations"][TEMPLATE_DIGEST_ANNOTATION] == "stable-digest"

    aborted = shape_deployments([_head()], _spec(True), _status(Phase.ABORTED, 0), STABLE_TEMPLATE)
    [web] = aborted
    assert TEMPLATE_DIGEST_ANNOTATION not in (web.body["metadata"].get("annotations") or {})
    assert web.body["spec"]["template"] == STABLE_TEMPLATE and web.body["spec"]["replicas"] == 4


@pytest.mark.parametrize("routed", [False, True])
def test_a_rollout_frozen_at_its_promotion_is_shaped_as_promoting(routed: bool) -> None:
    """Frozen past the promotion's deadline (decision 0030): the Git name keeps the candidate's
    template at full size and the candidate stays whole; nothing is cut to a stable share."""
    head = _head()
    digest = template_digest(head)
    frozen = RolloutStatus(
        phase=Phase.FROZEN,
        step=2,  # past both steps: at promotion
        weight=100,
        candidate=Version("bbb", digest),
        stable=Version("aaa", "stable-digest"),
    )
    live_template = head.body["spec"]["template"]  # the Git name rolls the candidate's
    shaped = {
        m.body["metadata"]["name"]: m.body
        for m in shape_deployments([head], _spec(routed), frozen, live_template)
    }
    web, canary = shaped["web"], shaped["web-canary"]
    assert web["spec"]["replicas"] == 4 and canary["spec"]["replicas"] == 4
    assert web["spec"]["template"]["spec"]["containers"] == [{"image": "v2"}]
    assert web["metadata"]["annotations"][TEMPLATE_DIGEST_ANNOTATION] == digest
    # frozen at an earlier step: the stable share, as before
    earlier = shape_deployments(
        [head], _spec(routed), replace(frozen, step=0, weight=25), STABLE_TEMPLATE
    )
    sizes = {m.body["metadata"]["name"]: m.body["spec"]["replicas"] for m in earlier}
    assert sizes == {"web": 4 if routed else 3, "web-canary": 1}
