"""``assess`` never raises, whatever dict it is given.

Every fixture object is mutated at every path (each value replaced by values of the wrong type,
or removed) and assessed, under its own kind and under every kind in the rule table and the
rule library.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.health.cases import CASES, EXISTING, HealthCase, each
from tether.core import HealthStatus, ObjectRef
from tether.health import assess
from tether.health._assess import RULES
from tether.health._library import library

WRONG_VALUES: list[Any] = [None, "weird", "", 7, -1, 0, True, 1.5, [], {}, [1, "x", None], {"a": 1}]
_REMOVE = object()

ALL_KINDS = [
    *(ObjectRef(group, kind, "shop", "x") for group, kind in RULES),
    *(ObjectRef(group, "Any" if kind == "*" else kind, "shop", "x") for group, kind in library()),
    ObjectRef("example.com", "Widget", "shop", "x"),
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _mutated(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    result = copy.deepcopy(body)
    parent = result
    for key in path[:-1]:
        parent = parent[key]
    if value is _REMOVE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)
    return result


def _check(ref: ObjectRef, live: Any) -> None:
    health = assess(ref, live)
    assert health.ref == ref
    assert health.status in HealthStatus
    if health.status is not HealthStatus.HEALTHY:
        assert health.message


@each(EXISTING)
def test_mutations_never_raise(case: HealthCase) -> None:
    assert case.live is not None
    for path in _paths(case.live):
        for value in [*WRONG_VALUES, _REMOVE]:
            _check(case.ref, _mutated(case.live, path, value))


def test_any_kind_of_any_fixture_never_raises() -> None:
    for case in CASES:
        for ref in ALL_KINDS:
            _check(ref, case.live)


@pytest.mark.parametrize("live", [{}, {"status": None}, {"status": []}, {"metadata": None}])
def test_nearly_empty_objects(live: dict[str, Any]) -> None:
    for ref in ALL_KINDS:
        _check(ref, live)


@pytest.mark.parametrize("live", ["weird", 3, ["a"], b"bytes"])
def test_a_live_object_that_is_not_a_dict_is_unknown(live: Any) -> None:
    health = assess(ObjectRef("apps", "Deployment", "shop", "web"), live)
    assert health.status is HealthStatus.UNKNOWN
    assert "cannot read live object" in health.message


def test_assess_does_not_change_the_live_object() -> None:
    for case in CASES:
        before = copy.deepcopy(case.live)
        assess(case.ref, case.live)
        assert case.live == before
