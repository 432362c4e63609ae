"""The agent's side of rollback and quarantine (``tether.delivery.rollback`` does the deciding).

- every pass's render goes through ``shaper``: the head's render digest is noted, quarantine
  entries the head no longer renders are lifted, and a quarantined render is replaced by the
  last good one, so auto-sync stays on and skips it;
- after a pass whose render was applied as rendered and became Healthy, ``healthy`` keeps that
  render in the audit store: the last good render a rollback restores with Git down;
- ``handle_request`` acts once on a ``tether.dev/rollback-request`` annotation (``tether
  rollback``): who asked, why, to which revision;
- ``retry_forge`` finishes pending revert pull requests and commit statuses on the app's
  interval once the forge answers again.

It is the ``RollbackHost`` of ``tether.delivery.rollback``: it applies a stored render as the
app's identity, reads and writes ``status.quarantine`` and knows each app's forge.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from tether.agent.events import EventRecorder
from tether.agent.secretdata import read_secret
from tether.agent.settings import AgentSettings
from tether.agent.sources import SourceWorkers
from tether.agent.specs import AppSpec, ForgeSpec
from tether.agent.state import AppState, Fleet, SourceState
from tether.agent.status import AppStatusChange, StatusWriter
from tether.agent.tenancy import with_identity
from tether.audit import AuditStore, RenderRecord
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection
from tether.core import Manifest, Revision
from tether.core.inventory import app_identity
from tether.core.renderdigest import short_digest
from tether.delivery import quarantine
from tether.delivery.model import Phase, RolloutStatus, read_request
from tether.delivery.quarantine import QuarantineEntry
from tether.delivery.revert import ForgeTarget
from tether.delivery.rollback import Applied, Retry, abort, finish_forge, gate
from tether.errors import ForgeError, TetherError
from tether.forge import Forge, RepoRef, StaticToken, forge_for
from tether.reconcile.options import SyncOptions
from tether.reconcile.run import ManifestShaper, SyncReport, run_render
from tether.source.revert import restoring_files

log = logging.getLogger("tether.agent")
FORGE_RETRY_SECONDS = 15.0
"""How soon a pending revert or commit status is tried again (at most the app's interval)."""
HANDLED_REQUEST = "lastRollbackRequest"
LAST_RENDER = "lastAppliedRender"
Options = Callable[[AppSpec], SyncOptions]
Restored = Callable[[AppState, SyncReport], Awaitable[None]]


@dataclass
class Head:
    """The render a pass got from Git (``manifests``, ``digest``), and what it applied."""

    revision: Revision
    manifests: list[Manifest]
    digest: str
    as_rendered: bool = False  # not held back by a quarantine
    applied: list[Manifest] | None = None  # what the pass applied (after delivery's shaping)


class Quarantines:
    """Rollback, quarantine and last-good renders for the Apps of this agent."""

    def __init__(
        self,
        *,
        connection: Connection,
        client: KubeClient,
        settings: AgentSettings,
        fleet: Fleet,
        sources: SourceWorkers,
        status: StatusWriter,
        events: EventRecorder,
        audit: AuditStore,
        options: Options,
        restored: Restored,
    ) -> None:
        self.connection = connection
        self.client = client
        self.settings = settings
        self.fleet = fleet
        self.sources = sources
        self.status = status
        self.events = events
        self._audit = audit
        self.options = options
        self.restored = restored
        self.actor = f"agent/{settings.identity}"
        self.heads: dict[str, Head] = {}
        self._told_held: set[tuple[str, str]] = set()  # (app, commit) already evented as held
        self._forge_locks: dict[str, asyncio.Lock] = {}

    @property
    def audit(self) -> AuditStore:
        return self._audit

    def audit_name(self, app_key: str) -> str:
        return _inventory_name(app_key)

    # -- the pass ----------------------------------------------------------------------------

    def shaper(self, state: AppState, inner: ManifestShaper | None = None) -> ManifestShaper:
        """The pass's ``shape``: the quarantine gate first, then ``inner`` (delivery's) unless the
        gate held the head back."""
        key = state.spec.key

        async def shape(revision: Revision, manifests: list[Manifest]) -> list[Manifest]:
            await self.status.current(state)  # after a restart: read before judging a retry
            outcome = await gate(self, key, revision, manifests, self.actor, _retry(state))
            for entry in outcome.lifted:
                await self._told_lifted(state, entry, revision)
            if outcome.held is not None:
                await self._told_held_back(state, outcome.held, revision)
            head = Head(revision, manifests, outcome.digest, outcome.held is None)
            self.heads[key] = head
            shaped = outcome.manifests
            if inner is not None and outcome.held is None:
                # a held pass applies the stored render as it was applied (already shaped):
                # delivery does not see it, so a rollout stays Aborted until lifted or retried
                shaped = await inner(revision, shaped)
            head.applied = shaped
            return shaped

        return shape

    async def synced(self, state: AppState) -> None:
        """After a successful pass: the commit and render digest it applied, in status (what
        a rollback after a restart quarantines when no pass has run yet)."""
        head = self.heads.get(state.spec.key)
        if head is None:
            return
        render = {"revision": head.revision.commit, "renderDigest": head.digest}
        await self.status.app(state, AppStatusChange(fields={LAST_RENDER: render}))

    async def healthy(self, state: AppState) -> None:
        """The pass's render became Healthy: keep it as the app's last good render when it is
        what serves as rendered (``good_render``)."""
        head = self.heads.get(state.spec.key)
        if head is None or head.applied is None or not good_render(head, state.status):
            return
        record = RenderRecord.of(
            state.spec.inventory_name, head.revision, head.applied, head.digest
        )
        try:
            if await asyncio.to_thread(self.audit.record_render, record):
                log.info(
                    "kept render %s of %s as the last good one",
                    short_digest(record.digest),
                    head.revision,
                    extra={"app": state.spec.key},
                )
        except TetherError as error:
            log.warning("could not keep the healthy render: %s", error)

    async def _told_lifted(self, state: AppState, entry: QuarantineEntry, head: Revision) -> None:
        message = (
            f"quarantine of {entry.revision[:12]} ({short_digest(entry.render_digest)}) lifted: "
            f"the head {head} renders something else"
        )
        await self.events.record(state.spec, "Normal", "QuarantineLifted", message)

    async def _told_held_back(
        self, state: AppState, entry: QuarantineEntry, head: Revision
    ) -> None:
        seen = (state.spec.key, head.commit)
        if seen in self._told_held:
            return
        self._told_held.add(seen)
        message = (
            f"the head {head} renders quarantined {short_digest(entry.render_digest)} "
            f"({entry.reason}); the last good render is applied instead"
        )
        await self.events.record(state.spec, "Normal", "QuarantineHeld", message)

    # -- requests and retries ------------------------------------------------------------------

    async def handle_request(self, state: AppState) -> None:
        """Act on the App's rollback request once (its text is its identity: a new ``at`` is a
        new request); the outcome goes to ``status.lastRollbackRequest``, events and the audit
        trail. A crash half-way acts again after the restart, which ends the same way."""
        raw = state.spec.rollback_request
        if not raw:
            return
        status = await self.status.current(state)
        if (status.get(HANDLED_REQUEST) or {}).get("request") == raw:
            return
        try:
            request = _parsed_request(raw)
            result = await abort(
                self,
                state.spec.key,
                reason=request["reason"],
                # the name is the request's claim: anyone who may annotate the App writes it
                evidence=(
                    f"requested with `tether rollback` by {request['by']} (claimed, "
                    f"unverified: decision 0032) at {request['at']}"
                ),
                actor=request["by"],
                to=request["to"],
            )
        except TetherError as error:
            await self.events.record(state.spec, "Warning", "RollbackFailed", str(error))
            await self._handled(state, raw, "Failed", str(error))
            return
        message = (
            f"rolled back to {result.stable.revision} by {result.entry.by} (claimed): "
            f"{result.entry.reason}; {result.entry.revision[:12]} quarantined"
        )
        await self.events.record(state.spec, "Normal", "RolledBack", message)
        await self._handled(state, raw, "RolledBack", message)
        self._retry_later(state)

    async def _handled(self, state: AppState, raw: str, result: str, message: str) -> None:
        outcome = {"request": raw, "result": result, "message": message[:1000]}
        await self.status.app(state, AppStatusChange(fields={HANDLED_REQUEST: outcome}))

    async def retry_forge(self, state: AppState) -> None:
        """Finish what is pending on the forge for this app's quarantine, if anything."""
        status = await self.status.current(state)
        if not any(e.needs_forge for e in quarantine.of_status(status)):
            return
        entries = await finish_forge(self, state.spec.key, self.actor)
        if any(e.needs_forge for e in entries):
            self._retry_later(state)

    def _retry_later(self, state: AppState) -> None:
        delay = min(FORGE_RETRY_SECONDS, state.spec.interval)
        asyncio.get_running_loop().call_later(delay, state.poke, "pending revert retried")

    # -- RollbackHost ----------------------------------------------------------------------------

    async def restore(self, app_key: str, render: RenderRecord, actor: str) -> SyncReport:
        state = self._state(app_key)
        options = await with_identity(
            self.client, state.spec, self.options(state.spec), self.settings
        )
        # nothing pruned: Secrets are not in a stored render, and what the bad commit added
        # goes when the revert merges (a normal pass then prunes it)
        report = await run_render(
            render.revision,
            list(render.manifests),
            replace(options, prune=False),
            self.connection,
            audit=self.audit,
            actor=actor,
            client=self.client,
            source_url=render.revision.url,
        )
        if report.succeeded:
            await self.restored(state, report)
        return report

    async def entries(self, app_key: str) -> list[QuarantineEntry]:
        return quarantine.of_status(await self.status.current(self._state(app_key)))

    async def save(self, app_key: str, entries: list[QuarantineEntry]) -> None:
        fields = {"quarantine": quarantine.to_status(entries)}
        await self.status.app(self._state(app_key), AppStatusChange(fields=fields))

    async def applied(self, app_key: str) -> Applied | None:
        head = self.heads.get(app_key)
        if head is not None:
            return Applied(head.revision, head.digest)
        state = self._state(app_key)
        last = (await self.status.current(state)).get(LAST_RENDER) or {}
        if not last.get("revision") or not last.get("renderDigest"):
            return None
        source = self.fleet.sources.get(state.spec.source)
        url = source.spec.url if source else ""
        return Applied(Revision(url, "", str(last["revision"])), str(last["renderDigest"]))

    async def forge(self, app_key: str) -> ForgeTarget | None:
        state = self._state(app_key)
        source = self.fleet.sources.get(state.spec.source)
        if source is None or source.spec.forge is None:
            return None
        spec = source.spec.forge
        secret = await read_secret(self.client, source.spec.namespace, spec.secret_name)
        if spec.secret_name and not secret.get("token"):
            raise ForgeError(
                f"GitSource {source.spec.key}: forge Secret {spec.secret_name!r} has no key "
                "'token'; create it with the forge API token"
            )
        forge = forge_driver(spec, source.spec.url, secret.get("token", ""))
        base = _base_branch(source)

        async def files(good: str, bad: str) -> list[tuple[str, bytes | None]]:
            sync_source = await self.sources.sync_source(source, state.spec.path)
            assert sync_source.fetcher is not None
            fetched = [
                await asyncio.to_thread(sync_source.fetcher, source.spec.url, commit)
                for commit in (good, bad)
            ]
            return restoring_files(fetched[0].root, fetched[1].root, state.spec.path)

        return ForgeTarget(forge, _repository(spec, source.spec.url), base, files)

    def forge_lock(self, app_key: str) -> asyncio.Lock:
        return self._forge_locks.setdefault(app_key, asyncio.Lock())

    def _state(self, app_key: str) -> AppState:
        state = self.fleet.apps.get(app_key)
        if state is None:
            raise TetherError(f"app {app_key} is not handled by this agent (or was deleted)")
        return state


def _retry(state: AppState) -> Retry | None:
    """A ``tether rollout retry`` of the App that its rollouts have not acted on yet: the
    person asks for the quarantined head to be tried again."""
    request = read_request(dict(state.spec.rollout_request), state.spec.rollout_request_writer)
    if request is None or request.action != "retry":
        return None
    delivery = (state.status or {}).get("delivery") or {}
    if any((t or {}).get("handledAction") == request.key for t in delivery.values()):
        return None
    return Retry(request.by, request.reason)


def good_render(head: Head, status: Mapping[str, Any] | None) -> bool:
    """True when ``head``'s pass applied the render as rendered with no rollout in flight: no
    quarantine held it back, its Deployments went out as Git has them (delivery did not put a
    stable template or a split in), and every rollout of the App (``status``) is Promoted with
    no candidate (status can say Promoted with a candidate still set after a lost lease).
    Only such a render, once Healthy, may be a rollback's last good one."""
    if head.applied is None or not head.as_rendered:
        return False
    if _deployments(head.applied) != _deployments(head.manifests):
        return False
    delivery = (status or {}).get("delivery") or {}
    targets = [RolloutStatus.of(raw) for raw in delivery.values()]
    return all(t is None or (t.phase is Phase.PROMOTED and t.candidate is None) for t in targets)


def _deployments(manifests: list[Manifest]) -> list[dict[str, Any]]:
    return [m.body for m in manifests if m.body.get("kind") == "Deployment"]


def _inventory_name(app_key: str) -> str:
    """``namespace/name`` as the audit store names the app (``tether.core.inventory``)."""
    namespace, _, name = app_key.partition("/")
    return app_identity(name, namespace)


def _parsed_request(raw: str) -> dict[str, Any]:
    """The rollback request's fields; a TetherError saying what is wrong with it."""
    try:
        request = json.loads(raw)
    except ValueError:
        request = None
    if not isinstance(request, dict) or not str(request.get("reason") or "").strip():
        raise TetherError(
            "the tether.dev/rollback-request annotation is not a JSON object with a reason; "
            "write it with `tether rollback APP --reason ...`"
        )
    return {
        "to": str(request["to"]) if request.get("to") else None,
        "reason": str(request["reason"]),
        "by": str(request.get("by") or "unknown"),
        "at": str(request.get("at") or ""),
    }


def forge_driver(spec: ForgeSpec, source_url: str, token: str) -> Forge:
    """The driver of the forge ``spec`` names (gitea, github or gitlab: ``forge_for``), at its
    ``url`` or else the source URL's origin (github.com and gitlab.com map to their APIs)."""
    return forge_for(spec.kind, spec.url or _origin(source_url), StaticToken(token))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _repository(spec: ForgeSpec, source_url: str) -> RepoRef:
    if spec.repository:
        return RepoRef.parse(spec.repository)
    return RepoRef.parse(urlsplit(source_url).path)


def _base_branch(source: SourceState) -> str:
    """The branch the source follows: where the revert goes."""
    ref = source.spec.ref or (source.revision.ref if source.revision else "") or "main"
    return ref.removeprefix("refs/heads/")
