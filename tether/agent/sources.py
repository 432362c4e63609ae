"""GitSources: one worker per source fetches it on its interval, on a webhook and on request,
records the artifact in status, and pokes the apps that use it when the revision moves. A
failing fetch is reported once to those apps (status and an alert), not on every retry."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path
from typing import Any

from tether.agent import metrics
from tether.agent.alerts import AlertQueue
from tether.agent.secretdata import decoded, get_secret, read_secret
from tether.agent.specs import SourceSpec
from tether.agent.state import AppState, Fleet, SourceState
from tether.agent.status import AppStatusChange, StatusWriter
from tether.cluster.client import KubeClient
from tether.errors import SourceError, TetherError
from tether.notify import Alert, AlertEvent
from tether.source import CredentialProvider, GitHubApp, SignaturePolicy, TokenFile, fetch


def jittered(seconds: float) -> float:
    """±10% so that many apps with one interval do not all wake at once (not security-relevant)."""
    return seconds * random.uniform(0.9, 1.1)  # noqa: S311


def alert_for(state: AppState, event: AlertEvent, summary: str, **details: str) -> Alert:
    return Alert(
        event=event,
        app=state.spec.name,
        namespace=state.spec.namespace,
        summary=summary,
        revision=state.applied_revision,
        details=details,
    )


class SourceWorkers:
    """Starts, updates and stops the worker of each GitSource seen by the informer."""

    def __init__(
        self, client: KubeClient, fleet: Fleet, status: StatusWriter, alerts: AlertQueue
    ) -> None:
        self.client = client
        self.fleet = fleet
        self.status = status
        self.alerts = alerts

    async def on_event(self, event: str, obj: dict[str, Any]) -> None:
        spec = SourceSpec.of(obj)
        current = self.fleet.sources.get(spec.key)
        if event == "DELETED":
            if current and current.task:
                current.task.cancel()
            self.fleet.sources.pop(spec.key, None)
            return
        if current is None:
            state = SourceState(spec)
            self.fleet.sources[spec.key] = state
            state.task = asyncio.create_task(self._worker(state))
        elif current.spec != spec:
            current.spec = spec
            current.trigger.set()

    async def _worker(self, state: SourceState) -> None:
        while True:
            if not state.spec.suspend:
                await self.fetch(state)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.trigger.wait(), jittered(state.spec.interval))
            state.trigger.clear()

    async def url(self, spec: SourceSpec) -> str:
        """The URL with credentials from the GitSource's Secret (never logged or stored)."""
        if not spec.secret_name or "://" not in spec.url:
            return spec.url
        secret = await get_secret(self.client, spec.namespace, spec.secret_name)
        if secret is None:
            raise SourceError(f"GitSource {spec.key}: Secret {spec.secret_name!r} not found")
        data = decoded(secret)
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
        secret = await get_secret(self.client, spec.namespace, spec.secret_name)
        data = decoded(secret)
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
        try:
            url = await self.url(spec)
            credentials = await self._credentials(state)
            policy = await self._signature_policy(spec)
            artifact = await asyncio.to_thread(
                fetch, url, spec.ref, credentials=credentials, verify=policy
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

    async def _failed(self, state: SourceState, error: TetherError) -> None:
        spec = state.spec
        metrics.GIT_FETCH_FAILURES.labels(spec.key).inc()
        first = not state.error
        state.error = str(error)
        await self.status.source(spec, False, "FetchFailed", state.error, state)
        if not first:
            return
        for app in self.fleet.apps_of(spec.key):
            summary = f"source {spec.key} unreachable: {error}"
            self.alerts.put(alert_for(app, AlertEvent.SOURCE_UNREACHABLE, summary))
            await self.status.app(app, AppStatusChange(source_error=state.error))
