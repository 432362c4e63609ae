"""The health fixtures: every ``fixtures/*.yaml`` file is a list of cases.

A case has ``name``, ``expect`` (a HealthStatus value), ``live`` (the object as the API server
returns it, or null for an object that does not exist), an optional ``message`` that must appear
in the health message, and an optional ``ref`` when it cannot be read from ``live``. Every case
is judged at ``NOW``, so timestamps in fixtures say how long ago an object was applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.core import HealthStatus, ObjectRef

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class HealthCase:
    id: str
    ref: ObjectRef
    live: dict[str, Any] | None
    expect: HealthStatus
    message: str | None


def _load() -> list[HealthCase]:
    cases = []
    for path in sorted(FIXTURES.glob("**/*.yaml")):
        for raw in yaml.safe_load(path.read_text()):
            live = raw["live"]
            ref = ObjectRef(**raw["ref"]) if "ref" in raw else ObjectRef.of(live)
            cases.append(
                HealthCase(
                    id=f"{path.relative_to(FIXTURES).with_suffix('')}: {raw['name']}",
                    ref=ref,
                    live=live,
                    expect=HealthStatus(raw["expect"]),
                    message=raw.get("message"),
                )
            )
    return cases


CASES = _load()
EXISTING = [case for case in CASES if case.live is not None]


def each(cases: list[HealthCase]) -> pytest.MarkDecorator:
    """Run a test once per case, named after it; the test takes a ``case`` argument."""
    return pytest.mark.parametrize("case", cases, ids=[case.id for case in cases])
