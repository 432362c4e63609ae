"""The agent's control loop: Apps and GitSources are watched; each GitSource is polled on its
interval (and on webhooks); each App has one serial worker that reconciles it on a timer, when
its source moves, when its spec changes, or when drift is seen; a global limit bounds how many
apps reconcile at once. Only the leader acts (see ``leader.py``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tether.agent import crds, metrics
from tether.agent.conditions import now, set_condition
from tether.agent.drift import DriftWatcher
from tether.agent.specs import REQUESTED_ANNOTATION, AppSpec, SourceSpec
from tether.agent.state import AppState, SourceState
from tether.audit import AuditStore
from tether.cluster.client import ApiError, KubeClient, Resource
from tether.cluster.kubeconfig import Connection
from tether.core import HealthStatus, ObjectRef
from tether.core.compare import drifted_fields
from tether.core.ignore import without_ignored
from tether.errors import ClusterError, SourceError, TenancyViolation, TetherError
from tether.notify import Alert, AlertEvent, Notifier, ProviderSpec
from tether.policy.access import Tenancy
from tether.reconcile.decrypt import KeySources
from tether.reconcile.engine import SyncEngine
from tether.reconcile.options import SyncOptions
from tether.reconcile.run import SourceSpec as SyncSource
from tether.reconcile.run import SyncReport, run_sync
from tether.source import (
    CredentialProvider,
    GitHubApp,
    SignaturePolicy,
    TokenFile,
    fetch,
    mask_url,
)

log = logging.getLogger("tether.agent")
_HISTORY = 5
# Watches report drift as it happens, so a timer tick with nothing new (same revision, spec and
# request, no drift) does no API work; every FULL_PASS_EVERY-th tick still re-plans everything
# as a safety net against a missed watch event. See docs/decisions/0005-quiet-timer-ticks.md.
FULL_PASS_EVERY = 10


@dataclass(frozen=True)
class AgentSettings:
    """How one agent replica runs."""

    identity: str
    namespace: str = ""  # watch Apps and GitSources here only; "" means every namespace
    lease_namespace: str = "tether-system"
    shard: int = 0
    shards: int = 1
    max_concurrent: int = 4
    kustomize: Path | None = None
    audit_url: str | None = None


def _jittered(seconds: float) -> float:
    """±10% so that many apps with one interval do not all wake at once (not security-relevant)."""
    return seconds * random.uniform(0.9, 1.1)  # noqa: S311


def in_shard(key: str, shard: int, shards: int) -> bool:
    """Stable assignment of an app (``namespace/name``) to one of ``shards`` replicas."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % shards == shard


class Agent:
    def __init__(self, connection: Connection, settings: AgentSettings) -> None:
        self.connection = connection
        self.settings = settings
        self.client = KubeClient(connection, concurrency=8)
        self.apps: dict[str, AppState] = {}
        self.sources: dict[str, SourceState] = {}
        self.drift = DriftWatcher(self.client, self.on_object_change)
        self.slots = asyncio.Semaphore(settings.max_concurrent)
        self.audit = AuditStore(settings.audit_url)
        self.api_reachable = False

    # -- leading -----------------------------------------------------------------------------

    async def lead(self) -> None:
        """What the leader does: watch Apps and GitSources until cancelled."""
        metrics.IS_LEADER.set(1)
        try:
            await asyncio.gather(
                self._informer("GitSource", self._on_source),
                self._informer("App", self._on_app),
            )
        finally:
            metrics.IS_LEADER.set(0)
            await self._stop_workers()

    async def _stop_workers(self) -> None:
        tasks = [a.task for a in self.apps.values() if a.task] + [
            s.task for s in self.sources.values() if s.task
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.drift.stop()
        self.apps.clear()
        self.sources.clear()

    async def _informer(self, kind: str, handle: Any) -> None:
        """List then watch one of our kinds, calling ``handle(event_type, object)``."""
        resource = await self.client.resource(crds.API_VERSION, kind)
        while True:
            try:
                data = await self.client.request(
                    "GET", resource.path(self.settings.namespace), what=f"{kind} list"
                )
                self.api_reachable = True
                for item in data.get("items", []):
                    await handle("ADDED", item)
                version = data["metadata"]["resourceVersion"]
                async for event in self.client.watch(resource, self.settings.namespace, version):
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        await handle(event["type"], event["object"])
            except asyncio.CancelledError:
                raise
            except (ClusterError, OSError, ValueError) as error:
                log.warning("watch of %s broke: %s", kind, error)
                await asyncio.sleep(1)

    # -- GitSources --------------------------------------------------------------------------

    async def _on_source(self, event: str, obj: dict[str, Any]) -> None:
        spec = SourceSpec.of(obj)
        current = self.sources.get(spec.key)
        if event == "DELETED":
            if current and current.task:
                current.task.cancel()
            self.sources.pop(spec.key, None)
            return
        if current is None:
            state = SourceState(spec)
            self.sources[spec.key] = state
            state.task = asyncio.create_task(self._source_worker(state))
        elif current.spec != spec:
            current.spec = spec
            current.trigger.set()

    async def _source_worker(self, state: SourceState) -> None:
        while True:
            if not state.spec.suspend:
                await self.fetch_source(state)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.trigger.wait(), _jittered(state.spec.interval))
            state.trigger.clear()

    async def _source_url(self, spec: SourceSpec) -> str:
        """The URL with credentials from the GitSource's Secret (never logged or stored)."""
        if not spec.secret_name or "://" not in spec.url:
            return spec.url
        secret = await self.client.get(
            await self.client.resource("v1", "Secret"), spec.namespace, spec.secret_name
        )
        if secret is None:
            raise SourceError(f"GitSource {spec.key}: Secret {spec.secret_name!r} not found")
        data = {k: _b64(v) for k, v in (secret.get("data") or {}).items()}
        user = data.get("username", "git")
        password = data.get("password") or data.get("token", "")
        scheme, rest = spec.url.split("://", 1)
        return f"{scheme}://{user}:{password}@{rest.split('@', 1)[-1]}"

    async def _credentials(self, state: SourceState) -> CredentialProvider | None:
        """A token file, or a GitHub App from the GitSource's Secret (rebuilt when it changes)."""
        spec = state.spec
        if spec.token_file:
            return TokenFile(Path(spec.token_file))
        if not spec.secret_name:
            return None
        secret = await self.client.get(
            await self.client.resource("v1", "Secret"), spec.namespace, spec.secret_name
        )
        data = {k: _b64(v) for k, v in ((secret or {}).get("data") or {}).items()}
        if "githubAppID" not in data:
            return None
        version = str((secret or {}).get("metadata", {}).get("resourceVersion", ""))
        if state.github_app is None or state.github_app_version != version:
            state.github_app = GitHubApp(
                data["githubAppID"],
                data.get("githubAppInstallationID", ""),
                data.get("githubAppPrivateKey", "").encode(),
                data.get("githubAppAPIURL", "https://api.github.com"),
            )
            state.github_app_version = version
        return state.github_app

    async def _signature_policy(self, spec: SourceSpec) -> SignaturePolicy | None:
        """Trusted keys from the Secret named in ``spec.verify``: SSH keys and OpenPGP blocks."""
        if not spec.verify_secret:
            return None
        data = await self._secret_data(spec.namespace, spec.verify_secret)
        if not data:
            raise SourceError(
                f"GitSource {spec.key}: verify Secret {spec.verify_secret!r} is missing or empty"
            )
        ssh = [
            line
            for value in data.values()
            for line in value.splitlines()
            if line.startswith(("ssh-", "ecdsa-", "sk-"))
        ]
        pgp = [value for value in data.values() if "BEGIN PGP PUBLIC KEY BLOCK" in value]
        return SignaturePolicy(ssh_allowed_signers=ssh, openpgp_public_keys=pgp)

    async def fetch_source(self, state: SourceState) -> None:
        spec, started = state.spec, time.monotonic()
        try:
            url = await self._source_url(spec)
            credentials = await self._credentials(state)
            policy = await self._signature_policy(spec)
            artifact = await asyncio.to_thread(
                fetch, url, spec.ref, credentials=credentials, verify=policy
            )
        except TetherError as error:
            metrics.GIT_FETCH_FAILURES.labels(spec.key).inc()
            first = not state.error
            state.error = str(error)
            await self._source_status(spec, False, "FetchFailed", state.error, state)
            if first:
                for app in self._apps_of(spec.key):
                    await self._alert(
                        app,
                        AlertEvent.SOURCE_UNREACHABLE,
                        f"source {spec.key} unreachable: {error}",
                    )
                    await self._app_status(app, source_error=state.error)
            return
        metrics.GIT_FETCH_DURATION.labels(spec.key).observe(time.monotonic() - started)
        recovered, state.error = bool(state.error), ""
        moved = state.revision is None or state.revision.commit != artifact.revision.commit
        state.revision = artifact.revision
        if artifact.signature:
            signer = artifact.signature.signer or artifact.signature.key
            state.signature = f"verified {artifact.signature.kind} signature by {signer}"
        if moved or recovered:
            await self._source_status(
                spec, True, "Succeeded", f"fetched {artifact.revision}", state
            )
            for app in self._apps_of(spec.key):
                if recovered:
                    await self._app_status(app, source_error="")
                app.poke()

    def _apps_of(self, source_key: str) -> list[AppState]:
        return [a for a in self.apps.values() if a.spec.source == source_key]

    async def _source_status(
        self, spec: SourceSpec, ok: bool, reason: str, message: str, state: SourceState
    ) -> None:
        resource = await self.client.resource(crds.API_VERSION, "GitSource")
        status: dict[str, Any] = {"conditions": set_condition([], "Ready", ok, reason, message, 0)}
        if state.revision:
            status["artifact"] = {
                **({"signature": state.signature} if state.signature else {}),
                "revision": str(state.revision),
                "commit": state.revision.commit,
                "url": mask_url(spec.url),
                "fetchedAt": now(),
            }
        with contextlib.suppress(ApiError):
            await self.client.patch_status(resource, spec.namespace, spec.name, status)

    # -- Apps --------------------------------------------------------------------------------

    async def _on_app(self, event: str, obj: dict[str, Any]) -> None:
        spec = AppSpec.of(obj)
        if not in_shard(spec.key, self.settings.shard, self.settings.shards):
            return
        current = self.apps.get(spec.key)
        if event == "DELETED":
            if current and current.task:
                current.task.cancel()
            self.apps.pop(spec.key, None)
            return
        requested = (obj["metadata"].get("annotations") or {}).get(REQUESTED_ANNOTATION, "")
        if current is None:
            state = AppState(spec, reason=requested)
            self.apps[spec.key] = state
            state.task = asyncio.create_task(self._app_worker(state))
            state.poke()
        elif current.spec != spec or requested != current.reason:
            current.spec, current.reason = spec, requested
            current.poke()

    async def _app_worker(self, state: AppState) -> None:
        while True:
            wait = (
                state.spec.interval
                if state.failures == 0
                else state.spec.next_backoff(state.failures)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.trigger.wait(), _jittered(wait))
            state.trigger.clear()
            async with self.slots:
                try:
                    await self.reconcile(state)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug must not kill the app's worker; log it and retry later
                    log.exception("reconcile of %s crashed", state.spec.key)
                    state.failures += 1

    def _options(self, spec: AppSpec, timeout: float = 0) -> SyncOptions:
        return SyncOptions(
            app=spec.inventory_name,
            namespace=spec.destination,
            prune=spec.prune,
            timeout=timeout,
            ignore=spec.ignore,
            keys=KeySources(secret=spec.decryption_secret, environment=False),
        )

    async def _limited(self, spec: AppSpec, options: SyncOptions) -> SyncOptions:
        """The options with the App's Project applied: tenancy rules, and impersonation of the
        Project's ServiceAccount so the API server enforces RBAC as well."""
        if not spec.project:
            return options
        namespace, _, name = spec.project.partition("/")
        project = await self.client.get(
            await self.client.resource(crds.API_VERSION, "Project"), namespace, name
        )
        if project is None:
            raise TenancyViolation(
                f"App {spec.key}: Project {spec.project} not found; nothing was applied"
            )
        body = project.get("spec") or {}
        kinds = body.get("kinds") or {}
        tenancy = Tenancy(
            name=f"project {name}",
            source_paths=tuple(body.get("sourcePaths") or ()),
            namespaces=tuple(body.get("destinations") or ()),
            allow_kinds=tuple(kinds.get("allow") or ()),
            deny_kinds=tuple(kinds.get("deny") or ()),
            cluster_scoped=bool(body.get("clusterScoped", False)),
        )
        account = body.get("serviceAccountName")
        return replace(
            options, tenancy=tenancy, impersonate=f"{namespace}/{account}" if account else ""
        )

    async def reconcile(self, state: AppState) -> None:
        """One pass for one app: checks, sync, health, status, audit, events, alerts."""
        spec = state.spec
        if spec.suspend:
            await self._app_status(
                state,
                reconciling=False,
                ready=(state.ready, "Suspended", "reconciliation is suspended"),
            )
            return
        if not spec.automated and state.reason == state.handled_request:
            await self._app_status(
                state,
                reconciling=False,
                ready=(
                    state.ready,
                    "ManualSync",
                    "automated sync is off: run `tether reconcile app` to sync",
                ),
            )
            return
        state.handled_request = state.reason
        waiting = self._not_ready_dependencies(spec)
        if waiting:
            await self._app_status(
                state,
                reconciling=True,
                ready=(False, "DependencyNotReady", f"waiting for {', '.join(waiting)}"),
            )
            asyncio.get_running_loop().call_later(5, state.poke)
            return
        source = self.sources.get(spec.source)
        if source is None or source.revision is None:
            message = source.error if source else f"GitSource {spec.source} not found"
            await self._app_status(
                state, reconciling=True, ready=(False, "SourceNotReady", message)
            )
            return
        settled = f"{source.revision.commit}:{spec.generation}:{state.reason}"
        if self._quiet(state, settled):
            return
        await self._app_status(state, reconciling=True)
        started = time.monotonic()
        state.syncing, state.dirty = True, False
        try:
            url = await self._source_url(source.spec)
            report = await run_sync(
                SyncSource(url, spec.path, source.revision.commit),
                await self._limited(spec, self._options(spec)),
                self.connection,
                audit=self.audit,
                actor=f"agent/{self.settings.identity}",
                kustomize=self.settings.kustomize,
                client=self.client,
            )
        except TetherError as error:
            report = None
            failure = str(error)
        finally:
            state.syncing = False
            if state.dirty and spec.self_heal:
                state.poke()  # an edit raced the sync: one more pass settles it
        metrics.RECONCILE_DURATION.labels(spec.key).observe(time.monotonic() - started)
        if report is None or not report.succeeded:
            await self._failed(state, report.error if report else failure, report)
            return
        await self._succeeded(state, report)
        state.settled = settled

    @staticmethod
    def _quiet(state: AppState, settled: str) -> bool:
        """True when this tick may be skipped: nothing changed since the last good pass."""
        unchanged = (
            state.ready and state.settled == settled and not state.drifted and not state.dirty
        )
        if unchanged and state.quiet_passes < FULL_PASS_EVERY - 1:
            state.quiet_passes += 1
            return True
        state.quiet_passes = 0
        return False

    def _not_ready_dependencies(self, spec: AppSpec) -> list[str]:
        return [
            d
            for d in spec.depends_on
            if not (self.apps.get(d) and self.apps[d].ready and self.apps[d].healthy)
        ]

    async def _failed(self, state: AppState, error: str, report: SyncReport | None) -> None:
        state.failures += 1
        state.ready = False
        metrics.SYNCS.labels(state.spec.key, "failed").inc()
        metrics.APP_READY.labels(state.spec.key).set(0)
        stalled = state.failures > state.spec.retry_limit
        self._remember(state, report, "failed", error)
        await self._app_status(
            state,
            reconciling=False,
            ready=(False, "SyncFailed", error),
            stalled=stalled,
            attempted=report.revision.commit if report and report.revision else "",
        )
        await self._event(state, "Warning", "SyncFailed", error)
        await self._alert(
            state, AlertEvent.SYNC_FAILED, f"sync of {state.spec.key} failed: {error}"
        )

    async def _succeeded(self, state: AppState, report: SyncReport) -> None:
        spec = state.spec
        state.failures = 0
        state.desired = {
            o.ref: (o.resource, o.body) for o in report.objects if o.resource is not None
        }
        new_kinds = await self.drift.ensure({resource for resource, _ in state.desired.values()})
        corrected = [ref for ref in state.drifted if ref in state.desired]
        state.drifted.clear()
        revision = report.revision.commit if report.revision else ""
        state.applied_revision = revision
        state.ready = True
        metrics.SYNCS.labels(spec.key, "succeeded").inc()
        metrics.MANAGED_OBJECTS.labels(spec.key).set(len(state.desired))
        metrics.APP_READY.labels(spec.key).set(1)
        summary = report.changes.summary()
        self._remember(state, report, "succeeded", summary)
        await self._app_status(
            state,
            reconciling=False,
            ready=(True, "Succeeded", f"applied {report.revision}: {summary}"),
            attempted=revision,
            applied=revision,
            drifted=False,
        )
        if report.changes.wrote_anything:
            await self._event(state, "Normal", "Synced", f"applied {report.revision}: {summary}")
            await self._alert(
                state, AlertEvent.SYNC_SUCCEEDED, f"{spec.key} synced {report.revision}: {summary}"
            )
        if corrected:
            names = ", ".join(str(r) for r in corrected)
            await self._event(state, "Normal", "DriftCorrected", f"restored {names}")
            await self._alert(
                state,
                AlertEvent.DRIFT_CORRECTED,
                f"{spec.key}: restored {names}",
                {"objects": names},
            )
        await self._catch_up(state, new_kinds)
        await self._wait_health(state, report)

    async def _catch_up(self, state: AppState, new_kinds: set[Resource]) -> None:
        """Objects written before their kind's watch began: read them once, as a watch would
        have shown them, so an edit or deletion in that gap is still drift."""
        for ref, (resource, _) in list(state.desired.items()):
            if resource in new_kinds:
                live = await self.client.get(resource, ref.namespace, ref.name)
                await self.on_object_change(state.spec.inventory_name, ref, live)

    async def _wait_health(self, state: AppState, report: SyncReport) -> None:
        """Wait for health, unless something new (drift, a new revision, a request) pokes the
        app first: a deleted object never becomes healthy by waiting, the next pass decides."""
        engine = SyncEngine(self.client, self._options(state.spec, state.spec.health_timeout))
        waiting = asyncio.create_task(
            engine.wait_healthy([o for o in report.objects if o.resource])
        )
        poked = asyncio.create_task(state.trigger.wait())
        await asyncio.wait({waiting, poked}, return_when=asyncio.FIRST_COMPLETED)
        poked.cancel()
        if not waiting.done():
            waiting.cancel()
            await asyncio.gather(waiting, poked, return_exceptions=True)
            return
        health = waiting.result()
        state.healthy = health.status is HealthStatus.HEALTHY
        metrics.set_health(state.spec.key, health.status.value)
        await self._app_status(state, health=health.status.value)
        if health.status is HealthStatus.DEGRADED:
            bad = "; ".join(f"{o.ref}: {o.message}" for o in health.not_healthy()[:5])
            await self._alert(
                state, AlertEvent.HEALTH_DEGRADED, f"{state.spec.key} is degraded: {bad}"
            )

    def _remember(
        self, state: AppState, report: SyncReport | None, result: str, message: str
    ) -> None:
        entry = {
            "revision": report.revision.commit if report and report.revision else "",
            "result": result,
            "message": message[:300],
            "finishedAt": now(),
        }
        state.history = [entry, *state.history][:_HISTORY]

    # -- drift -------------------------------------------------------------------------------

    async def on_object_change(
        self, inventory_name: str, ref: ObjectRef, live: dict[str, Any] | None
    ) -> None:
        state = next(
            (a for a in self.apps.values() if a.spec.inventory_name == inventory_name), None
        )
        if state is None:
            return
        if state.syncing:
            state.dirty = True  # the desired state is being replaced; judge after the sync
            return
        if ref not in state.desired:
            return
        _, desired = state.desired[ref]
        fields = drifted_fields(without_ignored(desired, live, state.spec.ignore), live)
        if not fields:
            return
        first = ref not in state.drifted
        state.drifted[ref] = fields
        if first:
            what = "deleted" if live is None else f"changed: {', '.join(fields[:10])}"
            metrics.DRIFT.labels(state.spec.key, ref.kind).inc()
            log.info(
                "drift detected",
                extra={"app": state.spec.key, "object": str(ref), "fields": fields[:10]},
            )
            await self._event(state, "Warning", "DriftDetected", f"{ref} {what}")
            await self._alert(
                state,
                AlertEvent.DRIFT_DETECTED,
                f"{state.spec.key}: {ref} {what}",
                {"object": str(ref), "fields": ", ".join(fields[:10])},
            )
            await self._app_status(state, drifted=True)
        if state.spec.self_heal and state.spec.automated and not state.spec.suspend:
            state.poke()

    # -- status, events, alerts --------------------------------------------------------------

    async def _app_status(
        self,
        state: AppState,
        *,
        reconciling: bool | None = None,
        ready: tuple[bool, str, str] | None = None,
        stalled: bool | None = None,
        drifted: bool | None = None,
        attempted: str = "",
        applied: str = "",
        health: str = "",
        source_error: str | None = None,
    ) -> None:
        resource = await self.client.resource(crds.API_VERSION, "App")
        spec = state.spec
        current = await self.client.get(resource, spec.namespace, spec.name)
        if current is None:
            return
        status = dict(current.get("status") or {})
        conditions = list(status.get("conditions") or [])
        generation = spec.generation
        if reconciling is not None:
            conditions = set_condition(
                conditions,
                "Reconciling",
                reconciling,
                "Progressing" if reconciling else "Idle",
                "",
                generation,
            )
        if ready is not None:
            conditions = set_condition(
                conditions, "Ready", ready[0], ready[1], ready[2], generation
            )
        if stalled is not None:
            conditions = set_condition(
                conditions,
                "Stalled",
                stalled,
                "RetriesExhausted" if stalled else "",
                "",
                generation,
            )
        if drifted is not None:
            detail = "; ".join(f"{r}: {', '.join(f[:5])}" for r, f in state.drifted.items())
            conditions = set_condition(
                conditions,
                "Drifted",
                drifted,
                "DriftDetected" if drifted else "InSync",
                detail,
                generation,
            )
        if source_error is not None:
            conditions = set_condition(
                conditions,
                "SourceReady",
                not source_error,
                "FetchFailed" if source_error else "Succeeded",
                source_error or "",
                generation,
            )
        status["conditions"] = conditions
        status["observedGeneration"] = generation
        status["history"] = state.history
        if attempted:
            status["lastAttemptedRevision"] = attempted
        if applied:
            status["lastAppliedRevision"] = applied
            kinds = sorted({r.group_kind for r in state.desired})
            status["inventory"] = {"count": len(state.desired), "groupKinds": kinds}
        if health:
            status["health"] = health
        with contextlib.suppress(ApiError):
            await self.client.patch_status(resource, spec.namespace, spec.name, status)

    async def _event(self, state: AppState, kind: str, reason: str, message: str) -> None:
        spec = state.spec
        stamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{spec.name}.", "namespace": spec.namespace},
            "involvedObject": {
                "apiVersion": crds.API_VERSION,
                "kind": "App",
                "name": spec.name,
                "namespace": spec.namespace,
            },
            "reason": reason,
            "message": message[:1000],
            "type": kind,
            "source": {"component": "tether-agent"},
            "reportingComponent": "tether-agent",
            "reportingInstance": self.settings.identity,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self.client.create(await self.client.resource("v1", "Event"), event)
        except ClusterError as error:
            log.warning("could not record event %s for %s: %s", reason, spec.key, error)

    async def _alert(
        self,
        state: AppState,
        event: AlertEvent,
        summary: str,
        details: dict[str, str] | None = None,
    ) -> None:
        providers = await self._providers(state.spec.namespace)
        if not providers:
            return
        alert = Alert(
            event=event,
            app=state.spec.name,
            namespace=state.spec.namespace,
            summary=summary,
            revision=state.applied_revision,
            details=details or {},
        )
        notifier = Notifier(providers)
        try:
            for result in await notifier.send(alert):
                if not result.ok:
                    log.warning("alert %s to %s failed: %s", event, result.provider, result.error)
        finally:
            await notifier.aclose()

    async def _providers(self, namespace: str) -> list[ProviderSpec]:
        resource = await self.client.resource(crds.API_VERSION, "AlertProvider")
        specs = []
        for item in await self.client.list(resource, namespace):
            spec = item.get("spec") or {}
            secret = await self._secret_data(
                namespace, (spec.get("secretRef") or {}).get("name", "")
            )
            specs.append(
                ProviderSpec(
                    name=item["metadata"]["name"],
                    type=spec["type"],
                    url=secret.get("url", "") or spec.get("url", ""),
                    hmac_key=secret["hmacKey"].encode() if secret.get("hmacKey") else None,
                    events=frozenset(
                        AlertEvent(e) for e in spec.get("events") or [e.value for e in AlertEvent]
                    ),
                )
            )
        return specs

    async def _secret_data(self, namespace: str, name: str) -> dict[str, str]:
        if not name:
            return {}
        secret = await self.client.get(await self.client.resource("v1", "Secret"), namespace, name)
        return {k: _b64(v) for k, v in ((secret or {}).get("data") or {}).items()}

    async def close(self) -> None:
        await self.client.close()
        self.audit.close()


def _b64(value: str) -> str:
    return base64.b64decode(value).decode()
