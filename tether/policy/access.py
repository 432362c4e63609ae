"""Tenancy at sync time: what one team (or Project) may deploy, as a pure check.

A team may deploy only from its source paths, only into its namespaces, and only kinds it is
allowed (``deny`` wins over ``allow``); cluster-scoped objects are refused unless the team is
allowed them. ``tether sync`` and the agent run this on the whole rendered set before anything
is dry-run, so a violating app applies nothing.

Source paths are globs (``globs.py``: ``*`` stays in one segment, ``apps/web/**`` includes
``apps/web``), and a path is allowed when it or a directory above it matches. They limit more
than the path an App names: ``PathLimits`` is handed to the render, which refuses to read any
file outside them (a symlink target, a kustomize base, patch or generator file), so a team
cannot deploy, or have the agent decrypt, another team's files by pointing at them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from tether.core import ObjectRef, SourceLocation
from tether.core.repopath import UnsafePath, normal_path
from tether.policy.globs import covers, may_match_under


@dataclass(frozen=True)
class PathLimits:
    """The repository paths one tenant may deploy from, and so the only files its renders may
    read. ``owner`` names the tenant in messages (``team 'web'``)."""

    owner: str
    patterns: tuple[str, ...]

    def allows(self, path: str) -> bool:
        """Whether ``path`` (normal form, relative to the repository root) may be read."""
        return covers(self.patterns, path)

    def may_contain(self, directory: str) -> bool:
        """Whether something under ``directory`` (normal form) may be read."""
        return any(may_match_under(pattern, directory) for pattern in self.patterns)

    def describe(self) -> str:
        return f"the paths {self.owner} may deploy from ({', '.join(self.patterns)})"


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

    def path_limits(self) -> PathLimits | None:
        """What this tenant's renders may read; None when it may deploy from any path."""
        if not self.source_paths:
            return None
        return PathLimits(f"team {self.name!r}", self.source_paths)


@dataclass(frozen=True)
class PlacedObject:
    """An object as it will be applied: identity, scope, and where it came from."""

    ref: ObjectRef
    namespaced: bool
    source: SourceLocation


def _matches(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def path_violations(tenancy: Tenancy, source_path: str) -> list[str]:
    """The source path, when the team may not deploy from it (or it is not a safe path)."""
    try:
        path = normal_path(source_path)
    except UnsafePath as exc:
        return [f"path {source_path!r} is refused: {exc}"]
    limits = tenancy.path_limits()
    if limits is None or limits.allows(path):
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
