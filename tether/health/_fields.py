"""Checked reads from a live object: the only place that looks at raw dict shapes.

A live object comes from the API server as plain JSON, but health must never trust it: a field
can be missing, ``null``, or (from a buggy controller or a hand-written fixture) of the wrong
type. ``Fields`` returns typed values and raises ``Unparseable`` naming the field when the type
is wrong; ``assess`` turns that into an Unknown health with the message, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Unparseable(Exception):
    """A field of the live object has a shape health cannot read."""


@dataclass(frozen=True)
class Condition:
    """One entry of ``status.conditions``; ``status`` is "True", "False" or "Unknown"."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    observed_generation: int | None = None

    @property
    def is_true(self) -> bool:
        return self.status == "True"

    @property
    def is_false(self) -> bool:
        return self.status == "False"

    def explain(self) -> str:
        """``Reason: message``, or whichever of the two is set."""
        return ": ".join(part for part in (self.reason, self.message) if part)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Fields:
    """Typed reads over one object body, by dotted path (``status.readyReplicas``).

    Absent and ``null`` fields give the default; a value of the wrong type raises
    ``Unparseable``.
    """

    def __init__(self, body: Mapping[str, Any], where: str = "") -> None:
        self._body = body
        self._where = where  # the path of ``body`` inside the live object, for messages
        self._conditions: dict[str, Condition] | None = None

    @property
    def body(self) -> Mapping[str, Any]:
        """The object itself, unread (for CEL expressions, which do their own checking)."""
        return self._body

    def _named(self, path: str) -> str:
        return f"{self._where}.{path}" if self._where and path else self._where or path

    def _wrong(self, path: str, value: object, expected: str) -> Unparseable:
        return Unparseable(f"{self._named(path)} is a {_type_name(value)}, expected {expected}")

    def raw(self, path: str) -> object:
        """The value at ``path``, or None when any step is absent or null."""
        node: object = self._body
        walked: list[str] = []
        for key in path.split("."):
            if node is None:
                return None
            if not isinstance(node, Mapping):
                raise self._wrong(".".join(walked), node, "an object")
            walked.append(key)
            node = node.get(key)
        return node

    def has(self, path: str) -> bool:
        return self.raw(path) is not None

    def integer(self, path: str, default: int = 0) -> int:
        value = self.raw(path)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(path, value, "an integer")
        return value

    def optional_integer(self, path: str) -> int | None:
        return self.integer(path) if self.has(path) else None

    def generation(self, path: str) -> int | None:
        """A generation number, written as an integer or as a string of digits (Argo Rollouts and
        controllers whose status is a protobuf message publish ``observedGeneration`` as a
        string). None when absent, or when the string is not a number (old Argo Rollouts wrote a
        hash there): such a value says nothing about generations, so it is not an error."""
        value = self.raw(path)
        if isinstance(value, str):
            text = value.strip()
            return int(text) if text.isdigit() else None
        return self.optional_integer(path)

    def text(self, path: str, default: str = "") -> str:
        value = self.raw(path)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(path, value, "a string")
        return value

    def flag(self, path: str) -> bool:
        value = self.raw(path)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._wrong(path, value, "a boolean")
        return value

    def items(self, path: str) -> list[Any]:
        value = self.raw(path)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(path, value, "a list")
        return value

    def objects(self, path: str) -> list[Fields]:
        """A list of objects at ``path``, each wrapped for further checked reads."""
        found = []
        for index, item in enumerate(self.items(path)):
            where = f"{path}[{index}]"
            if not isinstance(item, Mapping):
                raise self._wrong(where, item, "an object")
            found.append(Fields(item, self._named(where)))
        return found

    def mapping(self, path: str) -> Mapping[str, Any] | None:
        """The object at ``path``, or None when absent."""
        value = self.raw(path)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._wrong(path, value, "an object")
        return value

    def condition(self, kind: str) -> Condition | None:
        """The ``status.conditions`` entry of type ``kind``, if any."""
        if self._conditions is None:
            self._conditions = {}
            for entry in self.objects("status.conditions"):
                parsed = Condition(
                    type=entry.text("type"),
                    status=entry.text("status"),
                    reason=entry.text("reason"),
                    message=entry.text("message"),
                    observed_generation=entry.generation("observedGeneration"),
                )
                self._conditions.setdefault(parsed.type, parsed)
        return self._conditions.get(kind)

    def condition_is(self, kind: str, status: str) -> Condition | None:
        """The condition of type ``kind`` when its status is ``status``, else None."""
        found = self.condition(kind)
        return found if found is not None and found.status == status else None
