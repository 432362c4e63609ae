"""The ChangeSet: the single result type of every effect.

Audit rows, CLI output, events, alerts and the inventory are all built from it. One ``Change``
per object names what Tether did (or, in a dry run, would do) to it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tether.core.objects import ObjectRef


class Action(StrEnum):
    """What happened to one object."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    SKIPPED = "skipped"
    FAILED = "failed"

    @property
    def writes(self) -> bool:
        return self in (Action.CREATED, Action.CONFIGURED, Action.PRUNED)


@dataclass(frozen=True)
class Change:
    """One object's outcome; ``reason`` says why for skipped and failed objects."""

    ref: ObjectRef
    action: Action
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.ref.group,
            "kind": self.ref.kind,
            "namespace": self.ref.namespace,
            "name": self.ref.name,
            "action": self.action.value,
            **({"reason": self.reason} if self.reason else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        ref = ObjectRef(
            data.get("group", ""), data["kind"], data.get("namespace", ""), data["name"]
        )
        return cls(ref, Action(data["action"]), data.get("reason", ""))


@dataclass
class ChangeSet:
    """Every object's outcome of one sync (or one dry run), in the order they were handled."""

    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False

    def add(self, ref: ObjectRef, action: Action, reason: str = "") -> None:
        self.changes.append(Change(ref, action, reason))

    def extend(self, other: ChangeSet) -> None:
        self.changes.extend(other.changes)

    def counts(self) -> dict[Action, int]:
        counted = Counter(change.action for change in self.changes)
        return {action: counted.get(action, 0) for action in Action}

    @property
    def wrote_anything(self) -> bool:
        return any(change.action.writes for change in self.changes)

    @property
    def failed(self) -> list[Change]:
        return [change for change in self.changes if change.action is Action.FAILED]

    def summary(self) -> str:
        """``2 created, 1 configured, 5 unchanged`` (actions with a count of zero left out)."""
        parts = [f"{count} {action.value}" for action, count in self.counts().items() if count]
        return ", ".join(parts) or "nothing to do"

    def to_list(self) -> list[dict[str, Any]]:
        return [change.to_dict() for change in self.changes]

    @classmethod
    def from_list(cls, data: list[dict[str, Any]]) -> ChangeSet:
        return cls([Change.from_dict(item) for item in data])
