"""assess_all and the worst-of rule of a HealthReport."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tether.core import HealthReport, HealthStatus, ObjectHealth, ObjectRef
from tether.health import assess, assess_all

ORDER = [
    HealthStatus.HEALTHY,
    HealthStatus.PROGRESSING,
    HealthStatus.MISSING,
    HealthStatus.DEGRADED,
    HealthStatus.UNKNOWN,
]


def _deployment(name: str, available: int) -> tuple[ObjectRef, dict[str, Any]]:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "generation": 1},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": available,
        },
    }
    return ObjectRef.of(body), body


# One object of each status, in severity order.
ONE_OF_EACH = [
    (ObjectRef("", "ConfigMap", "shop", "settings"), {"kind": "ConfigMap"}),
    _deployment("web", available=1),
    (ObjectRef("apps", "Deployment", "shop", "gone"), None),
    (ObjectRef("", "Pod", "shop", "web-1"), {"status": {"phase": "Failed"}}),
    (ObjectRef("example.com", "Widget", "shop", "w"), {"status": "weird"}),
]


def test_fixture_objects_have_the_statuses_in_order() -> None:
    assert [assess(ref, live).status for ref, live in ONE_OF_EACH] == ORDER


def test_severity_order() -> None:
    assert sorted(HealthStatus, key=lambda status: status.severity) == ORDER


@pytest.mark.parametrize("size", range(1, len(ONE_OF_EACH) + 1))
def test_report_is_the_worst_of_its_objects(size: int) -> None:
    for subset in itertools.combinations(range(len(ONE_OF_EACH)), size):
        for order in itertools.permutations(subset):
            report = assess_all(ONE_OF_EACH[index] for index in order)
            assert report.status is ORDER[max(subset)]


def test_empty_report_is_healthy() -> None:
    assert assess_all([]).status is HealthStatus.HEALTHY


def test_report_keeps_the_given_order_and_lists_what_is_not_healthy() -> None:
    report = assess_all(reversed(ONE_OF_EACH))

    assert isinstance(report, HealthReport)
    assert [health.ref for health in report.objects] == [ref for ref, _ in reversed(ONE_OF_EACH)]
    assert [health.status for health in report.not_healthy()] == list(reversed(ORDER[1:]))


def test_missing_object() -> None:
    ref = ObjectRef("apps", "Deployment", "shop", "web")
    assert assess(ref, None) == ObjectHealth(ref, HealthStatus.MISSING, "not found in the cluster")


def test_rollout_message_reads_well() -> None:
    ref, body = _deployment("web", available=1)
    assert assess(ref, body).message == "Deployment rollout: 1 of 2 updated replicas are available"
