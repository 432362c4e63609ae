"""Users' CEL health checks: compiled with clear errors, judged in order, overriding rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.health.cases import NOW
from tether.core import HealthStatus, ObjectRef
from tether.health import DEFAULT_POLICY, HealthPolicy, InvalidHealthCheck, assess

ORIGIN = "app 'shop.web' spec.health.checks"
GADGET = ObjectRef("health.example.com", "Gadget", "shop", "g")

GADGET_CHECK: dict[str, Any] = {
    "group": "health.example.com",
    "kind": "Gadget",
    "degraded": 'object.status.phase == "Failed"',
    "progressing": '!has(object.status) || object.status.phase in ["", "Provisioning"]',
    "healthy": 'object.status.phase == "Ready"',
    "message": '"gadget is " + object.?status.?phase.orValue("new")',
}


def _gadget(status: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "health.example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": "g", "namespace": "shop", "generation": 1},
        "spec": {"size": 1},
    }
    if status is not None:
        body["status"] = status
    return body


POLICY = DEFAULT_POLICY.with_checks([GADGET_CHECK], ORIGIN)


@pytest.mark.parametrize(
    ("status", "expect", "message"),
    [
        (None, HealthStatus.PROGRESSING, "gadget is new"),
        ({"phase": "Provisioning"}, HealthStatus.PROGRESSING, "gadget is Provisioning"),
        ({"phase": "Failed"}, HealthStatus.DEGRADED, "gadget is Failed"),
        ({"phase": "Ready"}, HealthStatus.HEALTHY, "gadget is Ready"),
        ({"phase": "Sideways"}, HealthStatus.PROGRESSING, "none of the health checks"),
        ({"size": 3}, HealthStatus.PROGRESSING, "a check failed on this object"),
    ],
    ids=["no status", "provisioning", "failed", "ready", "unmatched", "expression error"],
)
def test_a_check_judges_its_kind(
    status: dict[str, Any] | None, expect: HealthStatus, message: str
) -> None:
    health = assess(GADGET, _gadget(status), POLICY, NOW)
    assert health.status is expect
    assert message in health.message


def test_without_the_check_the_kind_is_judged_by_the_generic_rule() -> None:
    assert assess(GADGET, _gadget({"phase": "Sideways"}), DEFAULT_POLICY, NOW).status is (
        HealthStatus.HEALTHY
    )


def test_a_check_overrides_a_built_in_rule() -> None:
    check = {"group": "apps", "kind": "Deployment", "healthy": "true"}
    policy = DEFAULT_POLICY.with_checks([check], ORIGIN)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "generation": 1},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 0},
    }
    ref = ObjectRef.of(body)
    assert assess(ref, body, DEFAULT_POLICY, NOW).status is HealthStatus.PROGRESSING
    assert assess(ref, body, policy, NOW).status is HealthStatus.HEALTHY


def test_a_check_overrides_a_library_rule_and_later_checks_win() -> None:
    body = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "tls", "namespace": "shop", "generation": 1},
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending"}]},
    }
    ref = ObjectRef.of(body)
    cluster = DEFAULT_POLICY.with_checks(
        [{"group": "cert-manager.io", "kind": "Certificate", "degraded": "true"}], "cluster"
    )
    app = cluster.with_checks(
        [{"group": "cert-manager.io", "kind": "Certificate", "healthy": "true"}], ORIGIN
    )
    assert assess(ref, body, DEFAULT_POLICY, NOW).status is HealthStatus.PROGRESSING
    assert assess(ref, body, cluster, NOW).status is HealthStatus.DEGRADED
    assert assess(ref, body, app, NOW).status is HealthStatus.HEALTHY


def test_conditions_are_a_variable_by_type() -> None:
    check = {
        "group": "health.example.com",
        "kind": "Gadget",
        "degraded": '"Broken" in conditions && conditions.Broken.status == "True"',
        "healthy": "true",
        "message": "conditions.Broken.reason",
    }
    policy = DEFAULT_POLICY.with_checks([check], ORIGIN)
    broken = _gadget({"conditions": [{"type": "Broken", "status": "True", "reason": "NoDisk"}]})
    health = assess(GADGET, broken, policy, NOW)
    assert (health.status, health.message) == (HealthStatus.DEGRADED, "NoDisk")
    assert assess(GADGET, _gadget({}), policy, NOW).status is HealthStatus.HEALTHY


@pytest.mark.parametrize(
    ("check", "error"),
    [
        ({"kind": "Gadget", "healthy": "object.status.phase =="}, "healthy 'object.status.phase"),
        ({"kind": "Gadget", "healthy": "objekt.status"}, "undeclared reference to 'objekt"),
        ({"kind": "Gadget", "healthy": '1 + "a"'}, "no matching overload"),
        ({"kind": "Gadget", "healthy": '"ready"'}, "it gives a string, a bool is expected"),
        ({"kind": "Gadget", "healthy": "true", "message": "1 + 2"}, "message '1 + 2'"),
        ({"kind": "Gadget", "healthy": "true", "heathy": "true"}, "unknown key 'heathy'"),
        ({"kind": "Gadget"}, "give at least one of degraded, progressing, healthy"),
        ({"healthy": "true"}, "kind must be given"),
        ({"kind": "Gadget", "healthy": 3}, "healthy must be a CEL expression"),
        ("healthy: true", "a check must be a mapping"),
    ],
    ids=[
        "syntax",
        "unknown variable",
        "types",
        "not a bool",
        "message not a string",
        "misspelt key",
        "no expression",
        "no kind",
        "not text",
        "not a mapping",
    ],
)
def test_a_bad_check_is_refused_naming_where_it_is(check: Any, error: str) -> None:
    good = {"group": "x.example.com", "kind": "Other", "healthy": "true"}
    with pytest.raises(InvalidHealthCheck) as raised:
        DEFAULT_POLICY.with_checks([good, check], ORIGIN)
    message = str(raised.value)
    assert message.startswith(f"{ORIGIN}: check 2")
    assert error in message


def test_the_grace_period_is_part_of_the_policy() -> None:
    cert = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {
            "name": "tls",
            "namespace": "shop",
            "generation": 1,
            "creationTimestamp": "2026-06-01T11:59:00Z",
        },
    }
    ref = ObjectRef.of(cert)
    assert assess(ref, cert, HealthPolicy(grace=120), NOW).status is HealthStatus.PROGRESSING
    assert assess(ref, cert, HealthPolicy(grace=30), NOW).status is HealthStatus.DEGRADED
