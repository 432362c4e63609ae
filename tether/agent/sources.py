"""GitSources: one worker per source fetches it on its interval, on a webhook and on request,
records the artifact in status, and pokes the apps that use it when the revision moves. A
failing fetch is reported once to those apps (status and an alert), not on every retry.

A GitSource is written by a tenant, so it reaches only what it names (decision 0013):

- credentials come only from the Secret its ``spec.secretRef`` names, in its own namespace, and
  reach git through the credential helper (``tether.source.credentials``); ``spec.tokenFile``
  (a file on the agent's disk) is refused with a condition saying what to use instead;
- ``FetchRules.tenant()``: no local paths or ``file://`` unless the operator allows them, no
  credentials over plain http, no machine git configuration, credential helper or ssh key;
- each namespace has its own cache directory (a commit fetched with one team's credentials is
  never served to another team) and its own few fetch slots, on threads no other work uses,
  so hung fetches of one namespace cannot delay another's; each fetch has a deadline.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tether.agent import metrics
from tether.agent.alerts import AlertQueue
from tether.agent.intervalworkers import IntervalWorkers
from tether.agent.secretdata import decoded, get_secret, read_secret
from tether.agent.settings import AgentSettings
from tether.agent.specs import SourceSpec
from tether.agent.state import AppState, Fleet, SourceState
from tether.agent.status import AppStatusChange, StatusWriter
from tether.cluster.client import KubeClient
from tether.errors import SourceError, TetherError
from tether.notify import Alert, AlertEvent
from tether.reconcile.charts import ChartSpec
from tether.reconcile.run import SourceSpec as SyncSource
from tether.source import (
    Artifact,
    BasicAuth,
    CredentialProvider,
    GitHubApp,
    SignaturePolicy,
    SshKey,
    default_cache_dir,
    fetch,
)

T = TypeVar("T")
# Threads for fetches only; the per-namespace slots bound how many of them one namespace holds.
_FETCH_THREADS = 256
CREDENTIAL_KEYS = (
    "keys username and password (or token) for https, identity (and known_hosts) for ssh, or "
    "githubAppID, githubAppInstallationID and githubAppPrivateKey for a GitHub App"
)
TOKEN_FILE_REFUSED = "TokenFileUnsupported"  # noqa: S105 - a condition reason


def alert_for(state: AppState, event: AlertEvent, summary: str, **details: str) -> Alert:
    return Alert(
        event=event,
        app=state.spec.name,
        namespace=state.spec.namespace,
        summary=summary,
        revision=state.applied_revision,
        details=details,
    )


class FetchSlots:
    """Bounded fetch slots per namespace: at most ``per_namespace`` fetches of one namespace run
    at once, each on a thread of a pool kept for fetches, so a namespace whose fetches hang
    (until their deadline) holds its own slots and no one else's."""

    def __init__(self, per_namespace: int) -> None:
        self.per_namespace = per_namespace
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._threads = ThreadPoolExecutor(_FETCH_THREADS, thread_name_prefix="tether-fetch")

    async def run(self, namespace: str, work: Callable[[], T]) -> T:
        """Run ``work`` on a fetch thread once one of ``namespace``'s slots is free."""
        slot = self._slots.setdefault(namespace, asyncio.Semaphore(self.per_namespace))
        async with slot:
            return await asyncio.get_running_loop().run_in_executor(self._threads, work)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


class SourceWorkers(IntervalWorkers[SourceSpec, SourceState]):
    """Starts, updates and stops the worker of each GitSource seen by the informer."""

    def __init__(
        self,
        client: KubeClient,
        fleet: Fleet,
        status: StatusWriter,
        alerts: AlertQueue,
        settings: AgentSettings,
    ) -> None:
        super().__init__(fleet.sources, client, fleet, status, alerts, settings)
        self.slots = FetchSlots(self.settings.fetches_per_namespace)

    def parse(self, obj: dict[str, Any]) -> SourceSpec:
        return SourceSpec.of(obj)

    def new_state(self, spec: SourceSpec) -> SourceState:
        return SourceState(spec)

    def respec(self, state: SourceState, spec: SourceSpec) -> None:
        state.spec = spec

    def fetcher(
        self,
        spec: SourceSpec,
        credentials: CredentialProvider | SshKey | None,
        verify: SignaturePolicy | None = None,
    ) -> Callable[[str, str | None], Artifact]:
        """How this agent fetches ``spec``: its namespace's cache, the tenant rules, the deadline
        and the credentials from its Secret."""
        return functools.partial(
            fetch,
            cache_dir=default_cache_dir() / "tenants" / spec.namespace,
            timeout=self.settings.fetch_timeout,
            credentials=None if isinstance(credentials, SshKey) else credentials,
            ssh_key=credentials if isinstance(credentials, SshKey) else None,
            verify=verify,
            rules=self.rules,
        )

    async def sync_source(
        self, state: SourceState, path: str, chart: ChartSpec | None = None
    ) -> SyncSource:
        """What an App of this source syncs (a path, or a chart): its fetched commit, fetched
        the same way."""
        assert state.revision is not None
        credentials = await self._credentials(state)
        return SyncSource(
            state.spec.url,
            path,
            state.revision.commit,
            fetcher=self.fetcher(state.spec, credentials),
            chart=chart,
        )

    async def _credentials(self, state: SourceState) -> CredentialProvider | SshKey | None:
        """Credentials from the GitSource's Secret, in its own namespace: an ssh key, a GitHub
        App (kept while the Secret is unchanged, so its token is reused), or a username and
        password."""
        spec = state.spec
        if not spec.secret_name:
            return None
        secret = await get_secret(self.client, spec.namespace, spec.secret_name)
        if secret is None:
            raise SourceError(
                f"GitSource {spec.key}: Secret {spec.secret_name!r} not found in namespace "
                f"{spec.namespace}; create it ({CREDENTIAL_KEYS}) or fix spec.secretRef"
            )
        data = decoded(secret)
        if data.get("identity"):
            return SshKey(data["identity"], data.get("known_hosts", ""))
        if "githubAppID" not in data:
            password = data.get("password") or data.get("token", "")
            if not password:
                raise SourceError(
                    f"GitSource {spec.key}: Secret {spec.secret_name!r} holds no credentials; "
                    f"give it {CREDENTIAL_KEYS}"
                )
            return BasicAuth(data.get("username") or "git", password)
        version = str(secret.get("metadata", {}).get("resourceVersion", ""))
        if state.github_app is None or state.github_app_version != version:
            api_url = data.get("githubAppAPIURL", "https://api.github.com")
            self.rules.check_token_endpoint(spec.url, api_url, f"GitSource {spec.key}")
            state.github_app = GitHubApp(
                data["githubAppID"],
                data.get("githubAppInstallationID", ""),
                data.get("githubAppPrivateKey", "").encode(),
                api_url,
            )
            state.github_app_version = version
        return state.github_app

    async def _signature_policy(self, spec: SourceSpec) -> SignaturePolicy | None:
        """Trusted keys from the Secret named in ``spec.verify``: SSH keys and OpenPGP blocks."""
        if not spec.verify_secret:
            return None
        data = await read_secret(self.client, spec.namespace, spec.verify_secret)
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

    async def fetch(self, state: SourceState) -> None:
        spec, started = state.spec, time.monotonic()
        if spec.token_file:
            await self._failed(state, SourceError(token_file_refused(spec)), TOKEN_FILE_REFUSED)
            return
        try:
            credentials = await self._credentials(state)
            policy = await self._signature_policy(spec)
            fetch_source = self.fetcher(spec, credentials, policy)
            artifact = await self.slots.run(
                spec.namespace, functools.partial(fetch_source, spec.url, spec.ref)
            )
        except TetherError as error:
            await self._failed(state, error)
            return
        metrics.GIT_FETCH_DURATION.labels(spec.key).observe(time.monotonic() - started)
        recovered, state.error = bool(state.error), ""
        moved = state.revision is None or state.revision.commit != artifact.revision.commit
        state.revision = artifact.revision
        if artifact.signature:
            signer = artifact.signature.signer or artifact.signature.key
            state.signature = f"verified {artifact.signature.kind} signature by {signer}"
        if moved or recovered:
            await self.status.source(spec, True, "Succeeded", f"fetched {artifact.revision}", state)
            for app in self.fleet.apps_of(spec.key):
                if recovered:
                    await self.status.app(app, AppStatusChange(source_error=""))
                app.poke(f"source {spec.key} at {artifact.revision}")

    async def _failed(
        self, state: SourceState, error: TetherError, reason: str = "FetchFailed"
    ) -> None:
        spec = state.spec
        metrics.GIT_FETCH_FAILURES.labels(spec.key).inc()
        first = not state.error
        state.error = str(error)
        await self.status.source(spec, False, reason, state.error, state)
        if not first:
            return
        for app in self.fleet.apps_of(spec.key):
            summary = f"source {spec.key} unreachable: {error}"
            self.alerts.put(alert_for(app, AlertEvent.SOURCE_UNREACHABLE, summary))
            await self.status.app(app, AppStatusChange(source_error=state.error))


def token_file_refused(spec: SourceSpec) -> str:
    """Why a GitSource with ``spec.tokenFile`` is not fetched, and what to write instead."""
    return (
        f"GitSource {spec.key}: spec.tokenFile is not supported by the agent (it would read a "
        "file on the agent's own disk); put the token in a Secret in namespace "
        f"{spec.namespace} (keys username and password), name it in spec.secretRef and remove "
        "spec.tokenFile"
    )
