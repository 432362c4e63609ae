"""Every rule per kind, table-driven over the YAML fixtures in ``fixtures/``."""

from __future__ import annotations

from pathlib import Path

from tests.health.cases import CASES, HealthCase, each
from tether.core import HealthStatus
from tether.health import assess
from tether.health._assess import RULES

DOCS = Path(__file__).parents[2] / "docs" / "health.md"


@each(CASES)
def test_case(case: HealthCase) -> None:
    health = assess(case.ref, case.live)

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


def test_every_status_appears_in_the_fixtures() -> None:
    assert {case.expect for case in CASES} == set(HealthStatus)


def test_the_docs_name_every_kind_in_the_table() -> None:
    text = DOCS.read_text()
    assert [kind for _, kind in RULES if kind not in text] == []
