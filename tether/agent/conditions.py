"""Kubernetes-style status conditions: set one, keep lastTransitionTime when nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]],
    kind: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
) -> list[dict[str, Any]]:
    """A copy of ``conditions`` with ``kind`` set (``None`` status means Unknown)."""
    value = "Unknown" if status is None else "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == kind), None)
    changed = previous is None or previous.get("status") != value
    condition = {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": message[:4000],
        "observedGeneration": generation,
        "lastTransitionTime": now() if changed else previous.get("lastTransitionTime", now()),  # type: ignore[union-attr]
    }
    return [c for c in conditions if c.get("type") != kind] + [condition]


def is_true(conditions: list[dict[str, Any]], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)
