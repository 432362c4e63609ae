"""Fields Tether leaves to other controllers (``ignoreDifferences`` of an App): removed from the
desired object before it is compared or applied, so Tether neither reports them as drift nor
fights the controller that owns them (an HPA's ``spec.replicas``, say)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tether.core.objects import ObjectRef


@dataclass(frozen=True)
class IgnoreRule:
    """Which objects (kind, optional group/name/namespace) and which of their fields."""

    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()

    def matches(self, ref: ObjectRef) -> bool:
        return (
            self.kind == ref.kind
            and self.group == ref.group
            and self.name in ("", ref.name)
            and self.namespace in ("", ref.namespace)
        )


def _pointer_parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/") if p]


def _remove(body: Any, parts: list[str]) -> None:
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(body, dict):
            if part not in body:
                return
            if last:
                del body[part]
                return
            body = body[part]
        elif isinstance(body, list) and part.isdigit() and int(part) < len(body):
            if last:
                return  # removing list items would shift the rest; leave lists whole
            body = body[int(part)]
        else:
            return


def managed_paths(live: dict[str, Any], managers: tuple[str, ...]) -> list[list[str]]:
    """Map-field paths (no list items) owned by ``managers`` in ``live``'s managedFields."""
    paths: list[list[str]] = []

    def walk(fields: dict[str, Any], prefix: list[str]) -> None:
        for key, child in fields.items():
            if not key.startswith("f:"):
                continue
            path = [*prefix, key[2:]]
            leaves = {k: v for k, v in (child or {}).items() if k.startswith("f:")}
            if leaves:
                walk(leaves, path)
            else:
                paths.append(path)

    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") in managers:
            walk(entry.get("fieldsV1") or {}, [])
    return paths


def without_ignored(
    body: dict[str, Any], live: dict[str, Any] | None, rules: tuple[IgnoreRule, ...]
) -> dict[str, Any]:
    """``body`` minus the fields the matching rules leave to others (a copy when any apply).

    Fields are only dropped for objects that exist: on creation Tether sets them from Git.
    """
    if live is None or not rules:
        return body
    ref = ObjectRef.of(body)
    matching = [rule for rule in rules if rule.matches(ref)]
    if not matching:
        return body
    trimmed = copy.deepcopy(body)
    for rule in matching:
        for pointer in rule.json_pointers:
            _remove(trimmed, _pointer_parts(pointer))
        for path in managed_paths(live, rule.managers):
            if path[:1] != ["metadata"]:
                _remove(trimmed, path)
    return trimmed
