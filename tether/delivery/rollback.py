"""Abort and rollback: put the last good render back with no Git round trip, quarantine the
bad (commit, render digest), fail its commit status and open the revert pull request.

    await abort(host, "shop/web", reason="error rate 12% > 5%", evidence=text, actor="alice")

The ``RollbackHost`` is what the caller (the agent) provides: the audit store, a way to apply
a stored render as the app's identity, the app's quarantine as kept in its status, the
commit and render digest it last applied, and its forge. Steps, each audited:

1. the stable render: ``--to`` a revision, else the newest healthy render that is neither the
   bad one nor quarantined, read from the audit store (never from Git);
2. applied with nothing pruned and no Secret touched (their values are never stored; they
   come back with the revert);
3. the quarantine entry, in status before anything else can fail;
4. the forge: commit status and revert pull request, or marked pending when the forge is
   down; ``finish_forge`` completes them later, once.

``gate`` is the other half, run on every pass: it lifts entries the head no longer renders
and puts the stable render in place of a quarantined one, so auto-sync stays on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from tether.audit import AuditStore, DeliveryRecord, RenderRecord
from tether.core import Manifest, Revision
from tether.core.renderdigest import render_digest, short_digest
from tether.delivery import quarantine
from tether.delivery.quarantine import QuarantineEntry
from tether.delivery.revert import ForgeTarget, open_revert, set_failing_status
from tether.errors import TetherError
from tether.reconcile.run import SyncReport

log = logging.getLogger("tether.delivery")

# The decisions this module takes, as ``data["decision"]`` of the audit's delivery records
# (kind ``decision``, target ``App``: the whole app, not one Deployment).
ROLLBACK = "rollback"
QUARANTINE = "quarantine"
QUARANTINE_LIFTED = "quarantine-lifted"
REVERT_PENDING = "revert-pending"
REVERT_OPENED = "revert-opened"
COMMIT_STATUS = "commit-status"
WHOLE_APP = "App"


@dataclass(frozen=True)
class Decision:
    """One decision about an app: who, why, about which commit and render digest."""

    app: str
    decision: str
    actor: str
    reason: str
    revision: str
    digest: str
    detail: dict[str, object]

    def record(self) -> DeliveryRecord:
        data = {"decision": self.decision, "reason": self.reason, "digest": self.digest}
        return DeliveryRecord(
            self.app, WHOLE_APP, "decision", self.actor, self.revision, {**data, **self.detail}
        )


class RollbackError(TetherError):
    """A rollback could not be done (nothing to roll back to, the restore failed)."""


@dataclass(frozen=True)
class Applied:
    """What an app last applied from Git: the commit and its render digest."""

    revision: Revision
    digest: str


class RollbackHost(Protocol):
    """What abort and gate need from the process that runs them (the agent)."""

    @property
    def audit(self) -> AuditStore: ...

    def audit_name(self, app_key: str) -> str:
        """The app's name in the audit store (as its sync records name it)."""
        ...

    async def restore(self, app_key: str, render: RenderRecord, actor: str) -> SyncReport:
        """Apply ``render`` as the app's identity, pruning nothing; recorded as a sync."""
        ...

    async def entries(self, app_key: str) -> list[QuarantineEntry]:
        """The app's quarantine, as its status holds it."""
        ...

    async def save(self, app_key: str, entries: list[QuarantineEntry]) -> None:
        """Write the app's quarantine to its status."""
        ...

    async def applied(self, app_key: str) -> Applied | None:
        """The commit and render digest the app last applied from Git (None: not known)."""
        ...

    async def forge(self, app_key: str) -> ForgeTarget | None:
        """The app's forge (None: its GitSource names none)."""
        ...

    def forge_lock(self, app_key: str) -> asyncio.Lock:
        """Held while the app's commit status and revert are worked on."""
        ...


@dataclass(frozen=True)
class AbortResult:
    stable: RenderRecord
    report: SyncReport
    entry: QuarantineEntry


async def abort(
    host: RollbackHost,
    app_key: str,
    *,
    reason: str,
    evidence: str,
    actor: str,
    to: str | None = None,
    candidate: Applied | None = None,
) -> AbortResult:
    """Roll ``app_key`` back to its stable render and quarantine ``candidate`` (default: what
    it last applied). ``to`` picks the render of a given commit instead of the newest good one.
    Raises ``RollbackError`` when there is nothing to roll back or to roll back to."""
    if not reason.strip():
        raise RollbackError(f"app {app_key}: a rollback needs a reason; say why in --reason")
    bad = candidate or await host.applied(app_key)
    if bad is None:
        raise RollbackError(
            f"app {app_key}: nothing was applied from Git yet, so there is nothing to roll back"
        )
    entries = await host.entries(app_key)
    stable = await _stable(host, app_key, bad, entries, to)
    report = await host.restore(app_key, stable, actor)
    await _decide(
        host,
        Decision(
            app_key,
            ROLLBACK,
            actor,
            reason,
            bad.revision.commit,
            bad.digest,
            {
                "stableRevision": stable.revision.commit,
                "stableDigest": stable.digest,
                "result": report.result,
                "error": report.error,
                "changes": report.changes.summary(),
            },
        ),
    )
    if not report.succeeded:
        raise RollbackError(
            f"app {app_key}: putting back the render of {stable.revision} failed: {report.error}"
        )
    entry = QuarantineEntry(
        revision=bad.revision.commit,
        render_digest=bad.digest,
        reason=reason,
        since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        by=actor,
        stable_revision=stable.revision.commit,
        evidence=evidence,
    )
    await host.save(app_key, quarantine.added(entries, entry))
    await _decide(
        host,
        Decision(app_key, QUARANTINE, actor, reason, bad.revision.commit, bad.digest, {}),
    )
    await finish_forge(host, app_key, actor)
    return AbortResult(stable, report, entry)


async def _stable(
    host: RollbackHost,
    app_key: str,
    bad: Applied,
    entries: list[QuarantineEntry],
    to: str | None,
) -> RenderRecord:
    if to:
        found = await asyncio.to_thread(host.audit.render_at, host.audit_name(app_key), to)
        if found is None:
            raise RollbackError(
                f"app {app_key}: no healthy render of revision {to} is recorded; "
                "`tether history` lists the revisions it ran, or omit --to for the last good one"
            )
        if found.digest == bad.digest:
            raise RollbackError(
                f"app {app_key}: revision {to} renders the same objects as the one rolled back "
                f"({short_digest(bad.digest)}); pick an earlier revision"
            )
        return found
    excluding = quarantine.digests(entries) | {bad.digest}
    found = await asyncio.to_thread(
        host.audit.last_good_render, host.audit_name(app_key), excluding
    )
    if found is None:
        raise RollbackError(
            f"app {app_key}: no earlier healthy render is recorded (renders are kept after each "
            "sync that became Healthy), so there is nothing to roll back to; `tether get app` "
            "shows which object keeps the App from being Healthy (an HTTPRoute or another "
            "custom resource whose controller never answers stays Degraded)"
        )
    return found


async def finish_forge(host: RollbackHost, app_key: str, actor: str) -> list[QuarantineEntry]:
    """Set the commit status and open the revert pull request of every entry still pending;
    an unreachable forge leaves them pending (the agent calls this again on its interval).
    One at a time per app (``host.forge_lock``): two callers never both write."""
    async with host.forge_lock(app_key):
        entries = await host.entries(app_key)
        pending = [e for e in entries if e.needs_forge]
        if not pending:
            return entries
        try:
            target = await host.forge(app_key)
        except TetherError as error:  # its token Secret is missing, say: pending, and audited
            for entry in pending:
                await _decide(host, _forge_decision(app_key, entry, actor, REVERT_PENDING, error))
            return entries
        if target is None:  # no forge named: nothing to wait for
            for entry in pending:
                done = replace(entry, pull_request_pending=False, commit_status_set=True)
                entries = await _updated(host, app_key, done)
            return entries
        try:
            for entry in pending:
                entries = await _settled(host, target, app_key, entries, entry, actor)
        finally:
            await target.forge.close()
        return entries


async def _settled(
    host: RollbackHost,
    target: ForgeTarget,
    app_key: str,
    entries: list[QuarantineEntry],
    entry: QuarantineEntry,
    actor: str,
) -> list[QuarantineEntry]:
    """``entries`` after one try of each step still to do for ``entry``: each step's success
    saved and audited as soon as it is done, a failure audited and left pending."""
    steps = [
        (not entry.commit_status_set, set_failing_status, COMMIT_STATUS),
        (entry.pull_request_pending, open_revert, REVERT_OPENED),
    ]
    for needed, step, decision in steps:
        if not needed:
            continue
        try:
            done = await step(target, app_key, entry)
        except TetherError as error:  # unreachable, refused, or Git down: stays pending
            log.info("the revert stays pending: %s", error, extra={"app": app_key})
            await _decide(host, _forge_decision(app_key, entry, actor, REVERT_PENDING, error))
            return entries
        entry = done
        entries = await _updated(host, app_key, entry)
        if decision == COMMIT_STATUS or entry.pull_request is not None:
            await _decide(host, _forge_decision(app_key, entry, actor, decision, None))
    return entries


async def _updated(
    host: RollbackHost, app_key: str, entry: QuarantineEntry
) -> list[QuarantineEntry]:
    """The app's entries as they are now, with ``entry`` saved in place of its own (not back
    if a pass lifted it meanwhile)."""
    entries = quarantine.updated(await host.entries(app_key), entry)
    await host.save(app_key, entries)
    return entries


def _forge_decision(
    app_key: str, entry: QuarantineEntry, actor: str, kind: str, error: TetherError | None
) -> Decision:
    detail: dict[str, object] = {}
    if entry.pull_request:
        detail = {"url": entry.pull_request.url, "number": entry.pull_request.number}
    if error is not None:
        detail = {"error": str(error)}
    return Decision(app_key, kind, actor, entry.reason, entry.revision, entry.render_digest, detail)


@dataclass(frozen=True)
class GateOutcome:
    """What a pass applies instead of the head's render, and what changed in the quarantine."""

    manifests: list[Manifest]
    digest: str  # the head's render digest
    held: QuarantineEntry | None  # the entry that held the head back, if one did
    lifted: list[QuarantineEntry]


@dataclass(frozen=True)
class Retry:
    """A person's ``tether rollout retry`` not acted on yet: the head is tried again."""

    by: str
    reason: str


async def gate(
    host: RollbackHost,
    app_key: str,
    revision: Revision,
    manifests: list[Manifest],
    actor: str,
    retry: Retry | None = None,
) -> GateOutcome:
    """The head's render, or the stable one in its place when its digest is quarantined; every
    entry the head no longer renders is lifted (and audited), and so is the head's own when a
    person retries it."""
    digest = render_digest(manifests)
    entries = await host.entries(app_key)
    if not entries:
        return GateOutcome(manifests, digest, None, [])
    kept, lifted = quarantine.lifted_by(entries, digest)
    if retry is not None:
        lifted, kept = [*lifted, *kept], []
    if lifted:
        await host.save(app_key, kept)
        for entry in lifted:
            await _decide(host, _lifted(app_key, entry, revision, digest, actor, retry))
    if not kept:
        return GateOutcome(manifests, digest, None, lifted)
    held = kept[0]
    excluding = quarantine.digests(kept)
    stable = await asyncio.to_thread(
        host.audit.last_good_render, host.audit_name(app_key), excluding
    )
    if stable is None:
        raise RollbackError(
            f"app {app_key}: the head {revision} renders quarantined {short_digest(digest)} and "
            "no healthy render is recorded to apply instead; nothing was applied. Merge the "
            "revert or a fix"
        )
    return GateOutcome(substituted(stable, manifests), digest, held, lifted)


def _lifted(
    app_key: str,
    entry: QuarantineEntry,
    revision: Revision,
    digest: str,
    actor: str,
    retry: Retry | None,
) -> Decision:
    detail: dict[str, object] = {"head": revision.commit, "headDigest": digest}
    if entry.render_digest == digest and retry is not None:
        why = f"retried by {retry.by or 'someone'}: {retry.reason or 'no reason given'}"
        return Decision(
            app_key, QUARANTINE_LIFTED, retry.by or actor, why, entry.revision,
            entry.render_digest, detail,
        )  # fmt: skip
    why = (
        f"the head {revision} renders {short_digest(digest)}, no longer "
        f"{short_digest(entry.render_digest)}: the revert merged or a fix landed"
    )
    return Decision(
        app_key, QUARANTINE_LIFTED, actor, why, entry.revision, entry.render_digest, detail
    )


def substituted(stable: RenderRecord, head: list[Manifest]) -> list[Manifest]:
    """The stable render's objects, plus the head's sensitive ones (Secrets follow Git: their
    values were never stored, and dropping them would prune them)."""
    return [*stable.manifests, *(m for m in head if m.sensitive)]


async def _decide(host: RollbackHost, decision: Decision) -> None:
    """Append ``decision`` to the audit trail; a failed write is logged, never fatal (the
    rollback itself matters more than its record, and the status still tells it)."""
    try:
        record = replace(decision.record(), app=host.audit_name(decision.app))
        await asyncio.to_thread(host.audit.record_delivery, record)
    except TetherError as error:
        log.warning("could not audit a %s decision: %s", decision.decision, error)
