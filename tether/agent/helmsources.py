"""HelmSources: one worker per HelmSource reads its Helm repository on its interval (and at once
when a new App asks it for a chart), resolves each chart and version range its Apps name to one
package verified against the repository's digest, records that in status, and pokes the Apps
whose package moved. An App then syncs exactly the package its source resolved (decision 0023).

A HelmSource is written by a tenant, so it reaches only what it names, like a GitSource
(decision 0013): credentials and CA only from the Secrets it names in its own namespace, the
same ``FetchRules.tenant()`` for its URL (no credentials in the URL, none over plain http but to
loopback under the operator's flag), its namespace's own chart cache and fetch slots. The cache
holds only whole, verified packages (written to a temporary file, then renamed).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tether.agent.alerts import AlertQueue
from tether.agent.conditions import now
from tether.agent.intervalworkers import IntervalWorkers
from tether.agent.repositoryaccess import RepositoryAccess, SourceAccess, repository_access
from tether.agent.settings import AgentSettings
from tether.agent.sources import FetchSlots, alert_for
from tether.agent.specs import AppSpec, HelmSourceSpec
from tether.agent.state import AppState, ChartWanted, Fleet, HelmSourceState
from tether.agent.status import AppStatusChange, StatusWriter
from tether.cluster.client import KubeClient
from tether.errors import SourceError, TetherError
from tether.notify import AlertEvent
from tether.source import (
    ChartArtifact,
    ChartSource,
    chart_cache_dir,
    fetch_chart,
)

KIND = "HelmSource"


def wanted_chart(spec: AppSpec) -> ChartWanted | None:
    """The chart and version range an App on a HelmSource asks for."""
    if spec.source_kind != KIND or spec.chart is None:
        return None
    return spec.chart.chart, spec.chart.version or "*"


def pinned_fetcher(
    artifact: ChartArtifact, fetch_again: Callable[[str], ChartArtifact]
) -> Callable[[ChartSource], ChartArtifact]:
    """A chart fetcher for one sync that hands back exactly ``artifact`` (the package the
    HelmSource resolved): from the cache when the file there still has its digest, else fetched
    again at that exact version and refused unless it has the same digest."""

    def fetch(_: ChartSource) -> ChartArtifact:
        with contextlib.suppress(OSError):
            digest = "sha256:" + hashlib.sha256(artifact.path.read_bytes()).hexdigest()
            if digest == artifact.digest:
                return artifact
        again = fetch_again(artifact.version)
        if again.digest != artifact.digest:
            raise SourceError(
                f"chart {artifact.name} {artifact.version} from {artifact.url} now has digest "
                f"{again.digest}, not {artifact.digest} as when its HelmSource resolved it; "
                "nothing was applied; the next fetch of the HelmSource resolves it again"
            )
        return again

    return fetch


class HelmSourceWorkers(IntervalWorkers[HelmSourceSpec, HelmSourceState]):
    """Starts, updates and stops the worker of each HelmSource seen by the informer."""

    def __init__(
        self,
        client: KubeClient,
        fleet: Fleet,
        status: StatusWriter,
        alerts: AlertQueue,
        settings: AgentSettings,
        slots: FetchSlots,
    ) -> None:
        super().__init__(fleet.helm_sources, client, fleet, status, alerts, settings)
        self.slots = slots

    def parse(self, obj: dict[str, Any]) -> HelmSourceSpec:
        return HelmSourceSpec.of(obj)

    def new_state(self, spec: HelmSourceSpec) -> HelmSourceState:
        return HelmSourceState(spec)

    def respec(self, state: HelmSourceState, spec: HelmSourceSpec) -> None:
        if replace(state.spec, requested=spec.requested) != spec:
            state.charts.clear()  # another URL or Secret: resolve everything again
            state.chart_errors.clear()
        state.spec = spec

    def _wanted(self, spec: HelmSourceSpec) -> list[ChartWanted]:
        found = {wanted_chart(app.spec) for app in self.fleet.apps_of(spec.key, KIND)}
        return sorted(w for w in found if w is not None)

    @staticmethod
    def cache_dir(spec: HelmSourceSpec) -> Path:
        """The namespace's own chart cache: a package fetched with one team's credentials is
        never served to another team."""
        return chart_cache_dir() / "tenants" / spec.namespace

    async def connection(self, spec: HelmSourceSpec) -> RepositoryAccess:
        """Credentials and CA bundle from the HelmSource's Secrets, in its own namespace, after
        its URL is checked against the tenant rules."""
        return await repository_access(self.client, self.rules, SourceAccess.of(KIND, spec))

    @staticmethod
    def chart_source(
        spec: HelmSourceSpec, wanted: ChartWanted, access: RepositoryAccess
    ) -> ChartSource:
        """``wanted`` in the HelmSource's repository (``oci://``: in its registry, the chart
        being ``URL/NAME``)."""
        return ChartSource(
            spec.url,
            wanted[0],
            wanted[1],
            auth=access.credentials,
            ca_file=access.ca_file,
            plain_http=access.plain_http,
            allowed_digests=spec.allowed_digests,
        )

    async def fetch(self, state: HelmSourceState) -> None:
        """Resolve every chart and range the HelmSource's Apps ask for; poke the Apps whose
        package moved (or that waited for their first one); report what failed."""
        spec = state.spec
        try:
            access = await self.connection(spec)
        except TetherError as error:
            await self._report(state, {}, {w: str(error) for w in self._wanted(spec)}, str(error))
            return
        resolved: dict[ChartWanted, ChartArtifact] = {}
        errors: dict[ChartWanted, str] = {}
        for wanted in self._wanted(spec):
            try:
                source = self.chart_source(spec, wanted, access)
                fetch = functools.partial(fetch_chart, source, self.cache_dir(spec))
                resolved[wanted] = await self.slots.run(spec.namespace, fetch)
            except TetherError as error:
                errors[wanted] = str(error)
        await self._report(state, resolved, errors, next(iter(errors.values()), ""))

    async def _report(
        self,
        state: HelmSourceState,
        resolved: dict[ChartWanted, ChartArtifact],
        errors: dict[ChartWanted, str],
        error: str,
    ) -> None:
        """Keep what resolved (a chart that failed keeps its last good package, so its Apps
        keep what they applied), tell the Apps, write the HelmSource's status."""
        spec = state.spec
        moved = {w for w, a in resolved.items() if state.charts.get(w) != a}
        recovered = {w for w in resolved if w in state.chart_errors}
        # a failure is told once, and again only when it changes (another cause)
        newly_failed = {w for w, e in errors.items() if state.chart_errors.get(w) != e}
        in_use = set(resolved) | set(errors)  # a chart no App asks for any more is forgotten
        charts = {w: a for w, a in {**state.charts, **resolved}.items() if w in in_use}
        # status is written when something changed, not on every quiet interval
        changed = bool(moved or recovered or newly_failed) or charts.keys() != state.charts.keys()
        changed = changed or not state.fetched_at or (bool(error) != bool(state.error))
        state.charts = charts
        state.chart_errors = dict(errors)
        state.error = error
        if changed:
            state.fetched_at = now()
        for app in self.fleet.apps_of(spec.key, KIND):
            wanted = wanted_chart(app.spec)
            if wanted is None:
                continue
            if wanted in errors:
                await self._app_failed(app, errors[wanted], wanted in newly_failed)
                continue
            if wanted in recovered:
                await self.status.app(app, AppStatusChange(source_error=""))
            if wanted in moved or wanted in recovered:
                artifact = resolved[wanted]
                app.poke(f"HelmSource {spec.key} at {artifact.name} {artifact.version}")
        if changed:
            await self.status.helm_source(spec, not errors, state)

    async def _app_failed(self, app: AppState, error: str, first: bool) -> None:
        """Told once per failure (``first``): status, an alert, and a poke (an App waiting for
        its first package then reports why it cannot sync; one that has a package keeps it)."""
        if not first:
            return
        summary = f"source HelmSource {app.spec.source} failed: {error}"
        self.alerts.put(alert_for(app, AlertEvent.SOURCE_UNREACHABLE, summary))
        await self.status.app(app, AppStatusChange(source_error=error))
        app.poke(f"HelmSource {app.spec.source} failed")

    def refetcher(
        self, spec: HelmSourceSpec, wanted: ChartWanted, access: RepositoryAccess
    ) -> Callable[[str], ChartArtifact]:
        """Fetch ``wanted``'s chart again at one exact version (the cache lost its package)."""

        def fetch_again(version: str) -> ChartArtifact:
            source = replace(self.chart_source(spec, wanted, access), version=version)
            return fetch_chart(source, self.cache_dir(spec))

        return fetch_again
