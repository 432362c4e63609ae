"""OCISources: one worker per OCISource pulls its artifact of plain manifests (Flux's format,
``tether push artifact`` / ``flux push artifact``) on its interval: a tag is resolved to its
manifest digest on every fetch, a ``semver:`` range to the highest matching tag, a digest is
taken as it is; with ``allowedDigests`` any other digest is refused before a blob is read. The
artifact is verified and unpacked into the namespace's own cache (by digest, staged then
renamed), recorded in status, and the Apps on it are poked when the digest moves.

Credentials, CA and URL rules are a HelmSource's (``tether.agent.repositoryaccess``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from tether.agent.alerts import AlertQueue
from tether.agent.conditions import now
from tether.agent.intervalworkers import IntervalWorkers
from tether.agent.repositoryaccess import RepositoryAccess, SourceAccess, repository_access
from tether.agent.settings import AgentSettings
from tether.agent.sources import FetchSlots, alert_for
from tether.agent.specs import OCISourceSpec
from tether.agent.state import Fleet, OCISourceState
from tether.agent.status import AppStatusChange, StatusWriter
from tether.cluster.client import KubeClient
from tether.core.paths import cache_root
from tether.errors import SourceError, TetherError
from tether.notify import AlertEvent
from tether.source.oci import FetchedArtifact, OCIAuth, OCIReference, fetch_artifact
from tether.source.oci_client import RegistryClient
from tether.source.semver import RangeError, parse_range

KIND = "OCISource"
SEMVER = "semver:"


def resolve(spec: OCISourceSpec, auth: OCIAuth, cache_dir: Path) -> FetchedArtifact:
    """Fetch ``spec``'s artifact at its ref (a ``semver:`` range: the highest matching tag)."""
    base = OCIReference.parse(spec.url)
    if spec.ref.startswith("sha256:"):
        reference = OCIReference.parse(f"{spec.url}@{spec.ref}")
    elif spec.ref.startswith(SEMVER):
        reference = base.with_tag(_highest_tag(spec, base, auth))
    else:
        reference = base.with_tag(spec.ref)
    return fetch_artifact(reference, auth, cache_dir, allowed_digests=spec.allowed_digests)


def _highest_tag(spec: OCISourceSpec, base: OCIReference, auth: OCIAuth) -> str:
    text = spec.ref.removeprefix(SEMVER)
    try:
        wanted = parse_range(text)
    except RangeError as error:
        raise SourceError(
            f"OCISource {spec.key}: invalid semver range {text!r}: {error}; write e.g. '^1.4'"
        ) from None
    with RegistryClient(base, auth) as registry:
        tags = registry.tags()
    tag = wanted.highest(tags)
    if tag is None:
        nearest = ", ".join(wanted.nearest(tags)) or "none"
        raise SourceError(
            f"OCISource {spec.key}: no tag of {base.display} matches the semver range {text!r} "
            f"(nearest version tags: {nearest}); push a matching tag or change the range"
        )
    return tag


class OCISourceWorkers(IntervalWorkers[OCISourceSpec, OCISourceState]):
    """Starts, updates and stops the worker of each OCISource seen by the informer."""

    def __init__(
        self,
        client: KubeClient,
        fleet: Fleet,
        status: StatusWriter,
        alerts: AlertQueue,
        settings: AgentSettings,
        slots: FetchSlots,
    ) -> None:
        super().__init__(fleet.oci_sources, client, fleet, status, alerts, settings)
        self.slots = slots

    def parse(self, obj: dict[str, Any]) -> OCISourceSpec:
        return OCISourceSpec.of(obj)

    def new_state(self, spec: OCISourceSpec) -> OCISourceState:
        return OCISourceState(spec)

    def respec(self, state: OCISourceState, spec: OCISourceSpec) -> None:
        state.spec = spec

    @staticmethod
    def cache_dir(spec: OCISourceSpec) -> Path:
        """The namespace's own artifact cache (never shared between teams)."""
        return cache_root() / "oci" / "tenants" / spec.namespace

    async def fetch(self, state: OCISourceState) -> None:
        spec = state.spec
        try:
            access = await repository_access(self.client, self.rules, SourceAccess.of(KIND, spec))
            auth = oci_auth(access)
            work = functools.partial(resolve, spec, auth, self.cache_dir(spec))
            artifact = await self.slots.run(spec.namespace, work)
        except TetherError as error:
            await self._failed(state, error)
            return
        recovered, state.error = bool(state.error), ""
        moved = state.artifact is None or state.artifact.digest != artifact.digest
        state.artifact, state.fetched_at = artifact, now()
        if moved or recovered:
            await self.status.oci_source(spec, True, f"fetched {artifact.revision}", state)
            for app in self.fleet.apps_of(spec.key, KIND):
                if recovered:
                    await self.status.app(app, AppStatusChange(source_error=""))
                app.poke(f"OCISource {spec.key} at {artifact.revision}")

    async def _failed(self, state: OCISourceState, error: TetherError) -> None:
        first = not state.error
        state.error = str(error)
        await self.status.oci_source(state.spec, False, state.error, state)
        if not first:
            return
        for app in self.fleet.apps_of(state.spec.key, KIND):
            summary = f"source OCISource {state.spec.key} failed: {error}"
            self.alerts.put(alert_for(app, AlertEvent.SOURCE_UNREACHABLE, summary))
            await self.status.app(app, AppStatusChange(source_error=state.error))
            app.poke(f"OCISource {state.spec.key} failed")


def oci_auth(access: RepositoryAccess) -> OCIAuth:
    return OCIAuth(access.credentials, access.ca_file, access.plain_http)
