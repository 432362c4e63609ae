"""Every rule per kind, table-driven over the YAML fixtures in ``fixtures/``."""

from __future__ import annotations

from pathlib import Path

from tests.health.cases import CASES, NOW, HealthCase, each
from tether.core import HealthStatus
from tether.health import assess
from tether.health._assess import RULES
from tether.health._library import library

DOCS = Path(__file__).parents[2] / "docs" / "health.md"


@each(CASES)
def test_case(case: HealthCase) -> None:
    health = assess(case.ref, case.live, now=NOW)

    assert health.ref == case.ref
    assert health.status is case.expect, health.message
    if case.message is not None:
        assert case.message in health.message
    if health.status is not HealthStatus.HEALTHY:
        assert health.message, "anything not Healthy says why"


def test_every_kind_with_its_own_rule_has_fixtures() -> None:
    covered = {(case.ref.group, case.ref.kind) for case in CASES}
    own_rule = {key for key, rule in RULES.items() if rule.check.__name__ != "exists"}
    assert own_rule <= covered


def test_every_rule_of_the_library_has_fixtures() -> None:
    covered = {(case.ref.group, case.ref.kind) for case in CASES}
    groups = {group for group, _ in covered}
    missing = [
        f"{kind}.{group}"
        for group, kind in library()
        if ((group, kind) not in covered) and not (kind == "*" and group in groups)
    ]
    assert missing == []


def test_every_library_file_has_healthy_progressing_and_degraded_fixtures() -> None:
    seen: dict[str, set[HealthStatus]] = {}
    for case in CASES:
        rule = library().get((case.ref.group, case.ref.kind)) or library().get(
            (case.ref.group, "*")
        )
        if rule is not None:
            seen.setdefault(rule.origin, set()).add(case.expect)
    wanted = {HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED}
    lacking = {origin: wanted - statuses for origin, statuses in seen.items() if wanted - statuses}
    assert lacking == {}
    assert len(seen) == len({rule.origin for rule in library().values()})


def test_every_status_appears_in_the_fixtures() -> None:
    assert {case.expect for case in CASES} == set(HealthStatus)


def test_the_docs_name_every_kind_in_the_table() -> None:
    text = DOCS.read_text()
    assert [kind for _, kind in RULES if kind not in text] == []
