"""Tenancy at sync time: what one team (or Project) may deploy, as a pure check.

A team may deploy only from its source paths, only into its namespaces, and only kinds it is
allowed (``deny`` wins over ``allow``); cluster-scoped objects are refused unless the team is
allowed them. ``tether sync`` and the agent run this on the whole rendered set before anything
is dry-run, so a violating app applies nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from tether.core import ObjectRef, SourceLocation


@dataclass(frozen=True)
class Tenancy:
    """One tenant's limits. Empty ``source_paths``/``allow_kinds`` mean "any"; globs allowed.

    Kinds are written ``Kind`` (core) or ``Kind.group`` (``Deployment.apps``); ``*`` works in both.
    """

    name: str
    source_paths: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    allow_kinds: tuple[str, ...] = ()
    deny_kinds: tuple[str, ...] = ()
    cluster_scoped: bool = False


@dataclass(frozen=True)
class PlacedObject:
    """An object as it will be applied: identity, scope, and where it came from."""

    ref: ObjectRef
    namespaced: bool
    source: SourceLocation


def _matches(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _path_allowed(path: str, patterns: tuple[str, ...]) -> bool:
    clean = path.strip("/") or "."
    return not patterns or any(
        fnmatch.fnmatchcase(clean, p.strip("/"))
        or clean.startswith(p.strip("/").rstrip("*").rstrip("/") + "/")
        for p in patterns
    )


def path_violations(tenancy: Tenancy, source_path: str) -> list[str]:
    """The source path, when the team may not deploy from it."""
    if _path_allowed(source_path, tenancy.source_paths):
        return []
    allowed = ", ".join(tenancy.source_paths)
    return [
        f"path {source_path!r} is outside what team {tenancy.name!r} may deploy from ({allowed})"
    ]


def object_violations(tenancy: Tenancy, objects: Iterable[PlacedObject]) -> list[str]:
    """Every object the team may not create, one line each naming the object, file and rule."""
    found = []
    for obj in objects:
        where = f"{obj.ref} ({obj.source})"
        kind = obj.ref.group_kind
        if _matches(kind, tenancy.deny_kinds) or (
            tenancy.allow_kinds and not _matches(kind, tenancy.allow_kinds)
        ):
            found.append(f"{where}: team {tenancy.name!r} may not create {kind} objects")
        elif not obj.namespaced and not tenancy.cluster_scoped:
            found.append(f"{where}: team {tenancy.name!r} may not create cluster-scoped objects")
        elif obj.namespaced and not _matches(obj.ref.namespace, tenancy.namespaces):
            allowed = ", ".join(tenancy.namespaces) or "none"
            found.append(
                f"{where}: namespace {obj.ref.namespace!r} is not one of team {tenancy.name!r}'s ({allowed})"
            )
    return found
