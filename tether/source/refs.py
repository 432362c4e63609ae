"""Turning what the user asked for (branch, tag, ``refs/...`` name, SHA) into an exact commit.

Names are tried in this order: ``refs/...`` as given; otherwise branch, then tag, then (for 7 to
64 hex digits) a commit SHA. Annotated tags are peeled to their commit. A full SHA already in the
mirror needs no network at all (a commit never changes); a full SHA no fetched ref reaches is
fetched by SHA, which works when the server allows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tether.errors import SourceError
from tether.source.git import GitError
from tether.source.mirror import Mirror

_ABBREVIATED_SHA = re.compile(r"[0-9a-f]{7,64}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# What git's check-ref-format refuses, plus a leading "-" (it would read as an option).
_INVALID_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|\.lock(/|$)|/\.|^[-/.]|[/.]$|^@$")
_LISTED = 8


def is_full_sha(ref: str) -> bool:
    return _FULL_SHA.fullmatch(ref) is not None


def check_ref(ref: str, display: str) -> None:
    """Refuse a ref git could not name (and one that would read as a command-line option)."""
    if not ref or _INVALID_REF.search(ref):
        raise SourceError(
            f"invalid ref {ref!r} for {display}: give a branch, tag, refs/... name or commit SHA"
        )


def candidates(ref: str) -> list[str]:
    """The full names ``ref`` may stand for, in the order they are tried."""
    if ref.startswith("refs/"):
        return [ref]
    names = [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    return [*names, ref] if _ABBREVIATED_SHA.fullmatch(ref) else names


def resolve(mirror: Mirror, ref: str, asked: str) -> str:
    """The commit ``ref`` names on the remote, fetching into ``mirror`` what that needs."""
    if is_full_sha(ref):
        cached = mirror.lookup([ref])
        if cached:
            return cached
    mirror.update()
    problem = None
    if ref.startswith("refs/") and not ref.startswith(("refs/heads/", "refs/tags/")):
        problem = _attempt(mirror.fetch_ref, ref)
    found = mirror.lookup(candidates(ref))
    if found is None and is_full_sha(ref):
        problem = _attempt(mirror.fetch_commit, ref)
        found = mirror.lookup([ref])
    if found is None:
        raise SourceError(not_found(mirror, asked, problem))
    return found


def _attempt(action: Callable[[str], None], argument: str) -> str | None:
    """Run a fetch that may legitimately fail; git's reason when it did (timeouts propagate)."""
    try:
        action(argument)
    except GitError as error:
        if error.timed_out:
            raise
        return error.reason
    return None


def not_found(mirror: Mirror, asked: str, problem: str | None) -> str:
    """``ref 'x' not found in URL: … (branches: a, b; tags: v1)`` with what to do."""
    message = (
        f"ref {asked!r} not found in {mirror.git.remote.display}: no branch, tag or commit by "
        f"that name ({available(mirror)})"
    )
    if problem:
        message += f"; fetching it directly failed: {problem}"
    return message + "; check the ref, or push it first"


def available(mirror: Mirror) -> str:
    """``branches: main, dev; tags: v1.0`` (a few of each, most recent first)."""
    kinds = (("branches", "heads"), ("tags", "tags"))
    return "; ".join(f"{label}: {_some(mirror.ref_names(space))}" for label, space in kinds)


def _some(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:_LISTED])
    return f"{shown}, … ({len(names) - _LISTED} more)" if len(names) > _LISTED else shown
