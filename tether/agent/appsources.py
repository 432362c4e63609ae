"""What an App syncs now, whatever its source's kind: ``AppSources.pin(spec)`` gives either
``Pinned`` (a token that moves exactly when what the App syncs moves, the revision for the audit
trail and heals, and how to build the sync's source) or ``NotReady`` (why not; an empty message
means a fetch is under way and pokes the App when done).

- GitSource: the commit its worker fetched; ``spec.path`` in it (a directory or a chart).
- OCISource: the artifact its worker pulled (by digest); ``spec.path`` in it.
- HelmSource: the package its worker resolved for the App's ``spec.chart.name`` and ``version``
  range, with the values files from the GitSource ``spec.chart.valuesSourceRef`` names (its
  commit is part of the token, so a values change in Git syncs too). See decision 0023.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from tether.agent.helmsources import HelmSourceWorkers, pinned_fetcher, wanted_chart
from tether.agent.sources import SourceWorkers
from tether.agent.specs import AppSpec
from tether.agent.state import Fleet, HelmSourceState, SourceState
from tether.core import Revision
from tether.reconcile.run import SourceSpec as SyncSource
from tether.source import Artifact, ChartArtifact, mask_url


@dataclass(frozen=True)
class NotReady:
    """The App cannot sync yet: ``message`` says why ("" while a first fetch is under way)."""

    message: str = ""


@dataclass(frozen=True)
class Pinned:
    """What the App syncs now."""

    token: str  # moves exactly when what the App syncs moves
    revision: Revision  # for the audit trail of heals
    url: str  # the source's URL, credentials masked
    build: Callable[[], Awaitable[SyncSource]] = field(compare=False)
    chart: dict[str, str] | None = None  # a repository chart: name, version, digest


class AppSources:
    """Resolves an App's source, of any kind, to what it syncs."""

    def __init__(self, fleet: Fleet, git: SourceWorkers, helm: HelmSourceWorkers) -> None:
        self.fleet = fleet
        self.git = git
        self.helm = helm

    async def pin(self, spec: AppSpec) -> Pinned | NotReady:
        if spec.source_kind == "HelmSource":
            return self._helm(spec)
        if spec.source_kind == "OCISource":
            return self._oci(spec)
        if spec.source_kind != "GitSource":
            return NotReady(f"{spec.source_kind} {spec.source}: not fetched by this agent yet")
        source = self._git(spec.source)
        if not isinstance(source, SourceState):
            return source
        assert source.revision is not None
        revision = source.revision
        return Pinned(
            revision.commit,
            revision,
            mask_url(source.spec.url),
            lambda: self.git.sync_source(source, spec.path, spec.chart),
        )

    def _git(self, key: str) -> SourceState | NotReady:
        """GitSource ``key``, fetched; else why not."""
        source = self.fleet.sources.get(key)
        if source and not (source.revision or source.error or source.spec.suspend):
            return NotReady()  # its first fetch is under way and pokes the app when done
        if source is None or source.revision is None:
            return NotReady(source.error if source else f"GitSource {key} not found")
        return source

    def _oci(self, spec: AppSpec) -> Pinned | NotReady:
        source = self.fleet.oci_sources.get(spec.source)
        if source is None:
            return NotReady(f"OCISource {spec.source} not found")
        if source.artifact is None:
            suspended = f"OCISource {spec.source} is suspended" if source.spec.suspend else ""
            return NotReady(source.error or suspended)
        artifact = source.artifact
        origin = f"from {artifact.origin}@{artifact.origin_revision}" if artifact.origin else ""
        revision = Revision(artifact.url, artifact.tag, artifact.digest, subject=origin)
        pulled = Artifact(revision, artifact.root)
        return Pinned(
            artifact.digest,
            revision,
            artifact.url,
            lambda: _oci_sync_source(spec, pulled),
        )

    def _helm(self, spec: AppSpec) -> Pinned | NotReady:
        helm = self.fleet.helm_sources.get(spec.source)
        wanted = wanted_chart(spec)
        if helm is None:
            return NotReady(f"HelmSource {spec.source} not found")
        if wanted is None:
            return NotReady(f"App {spec.key}: an App on a HelmSource names spec.chart.name")
        artifact = helm.charts.get(wanted)
        if artifact is None:
            error = helm.chart_errors.get(wanted) or helm.error
            if error or helm.spec.suspend:
                return NotReady(error or f"HelmSource {spec.source} is suspended")
            helm.trigger.set()  # a chart it has not resolved yet: fetch now, then poke the app
            return NotReady()
        values: SourceState | None = None
        if spec.values_source:
            found = self._git(spec.values_source)
            if not isinstance(found, SourceState):
                return found
            values = found
        values_commit = values.revision.commit if values and values.revision else ""
        return Pinned(
            f"{artifact.digest}:{values_commit}",
            Revision(
                mask_url(helm.spec.url),
                f"chart {artifact.name} {artifact.version}",
                artifact.digest,
                subject=_values_subject(values),
            ),
            mask_url(helm.spec.url),
            lambda: self._helm_sync_source(spec, helm, artifact, values),
            {"name": artifact.name, "version": artifact.version, "digest": artifact.digest},
        )

    async def _helm_sync_source(
        self,
        spec: AppSpec,
        helm: HelmSourceState,
        artifact: ChartArtifact,
        values: SourceState | None,
    ) -> SyncSource:
        """The chart of ``helm`` exactly as resolved, with the values files of ``values`` at its
        fetched commit, fetched the agent's way."""
        assert spec.chart is not None
        wanted = (spec.chart.chart, spec.chart.version or "*")
        access = await self.helm.connection(helm.spec)
        chart = replace(spec.chart, repository=helm.spec.url)
        fetcher = pinned_fetcher(artifact, self.helm.refetcher(helm.spec, wanted, access))
        if values is None:
            return SyncSource("", spec.path, chart=chart, chart_fetcher=fetcher)
        git = await self.git.sync_source(values, spec.path, chart)
        return replace(git, chart_fetcher=fetcher)


def _values_subject(values: SourceState | None) -> str:
    if values is None or values.revision is None:
        return ""
    return f"values from {values.revision.url}@{values.revision.short}"


async def _oci_sync_source(spec: AppSpec, pulled: Artifact) -> SyncSource:
    """``spec.path`` of the pulled artifact (already verified and unpacked in the cache)."""
    revision = pulled.revision
    return SyncSource(revision.url, spec.path, revision.commit, fetcher=lambda _url, _ref: pulled)
