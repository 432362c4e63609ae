"""The quarantine: (commit, render digest) pairs that auto-sync must not apply again.

Kept in ``App.status.quarantine`` so any replica, after any crash, knows it. Pure: entries in,
entries out. A pass renders the head; when its render digest is quarantined the pass applies
the last good render instead (auto-sync stays on), and every entry whose digest the head no
longer renders is lifted: the revert merged, or a fix landed.

The forge half of an entry (the revert pull request, the failing commit status) may be
*pending* while the forge is unreachable; ``needs_forge`` says which entries the agent still
has to finish, on its interval, until done (the forge's writes are idempotent, so a retry never
opens a second pull request).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

EVIDENCE_LIMIT = 4000
"""Characters of evidence kept in status (the pull request body is built from it on retry)."""


@dataclass(frozen=True)
class PullRequestRef:
    url: str
    number: int


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantined render: the commit that produced it, why, since when, who decided, and
    where its revert and commit status stand."""

    revision: str
    render_digest: str
    reason: str
    since: str
    by: str
    stable_revision: str = ""  # the commit whose render was put back
    evidence: str = ""
    pull_request: PullRequestRef | None = None
    pull_request_pending: bool = True
    commit_status_set: bool = False

    @property
    def needs_forge(self) -> bool:
        return self.pull_request_pending or not self.commit_status_set

    def to_status(self) -> dict[str, Any]:
        pull = self.pull_request
        return {
            "revision": self.revision,
            "renderDigest": self.render_digest,
            "reason": self.reason,
            "since": self.since,
            "by": self.by,
            "stableRevision": self.stable_revision,
            "evidence": self.evidence,
            "pullRequest": {"url": pull.url, "number": pull.number} if pull else None,
            "pullRequestPending": self.pull_request_pending,
            "commitStatusSet": self.commit_status_set,
        }

    @classmethod
    def of_status(cls, item: dict[str, Any]) -> QuarantineEntry:
        pull = item.get("pullRequest") or None
        return cls(
            revision=str(item.get("revision", "")),
            render_digest=str(item.get("renderDigest", "")),
            reason=str(item.get("reason", "")),
            since=str(item.get("since", "")),
            by=str(item.get("by", "")),
            stable_revision=str(item.get("stableRevision", "")),
            evidence=str(item.get("evidence", "")),
            pull_request=PullRequestRef(str(pull["url"]), int(pull["number"])) if pull else None,
            pull_request_pending=bool(item.get("pullRequestPending", False)),
            commit_status_set=bool(item.get("commitStatusSet", False)),
        )


def of_status(status: dict[str, Any] | None) -> list[QuarantineEntry]:
    """The entries an App's status holds (none when it holds none)."""
    return [QuarantineEntry.of_status(i) for i in (status or {}).get("quarantine") or []]


def to_status(entries: Iterable[QuarantineEntry]) -> list[dict[str, Any]]:
    return [e.to_status() for e in entries]


def digests(entries: Iterable[QuarantineEntry]) -> frozenset[str]:
    return frozenset(e.render_digest for e in entries)


def added(entries: list[QuarantineEntry], entry: QuarantineEntry) -> list[QuarantineEntry]:
    """``entries`` with ``entry``; an entry for the same digest is kept as it is (the first
    decision stands, its pull request too)."""
    if entry.render_digest in digests(entries):
        return entries
    return [*entries, replace(entry, evidence=entry.evidence[:EVIDENCE_LIMIT])]


def lifted_by(
    entries: list[QuarantineEntry], head_digest: str
) -> tuple[list[QuarantineEntry], list[QuarantineEntry]]:
    """``(kept, lifted)``: an entry lifts once the head no longer renders its digest."""
    kept = [e for e in entries if e.render_digest == head_digest]
    lifted = [e for e in entries if e.render_digest != head_digest]
    return kept, lifted


def updated(entries: list[QuarantineEntry], entry: QuarantineEntry) -> list[QuarantineEntry]:
    """``entries`` with the one of ``entry``'s digest replaced by ``entry``."""
    return [entry if e.render_digest == entry.render_digest else e for e in entries]
