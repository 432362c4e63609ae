"""What an agent's App last applied, built again from the cluster, so that ``tether status`` can
render it once more and compare object by object whatever the App's source kind.

The inventory records the source of the last sync (``tether.reconcile.run``): for an OCISource
the artifact's digest; for a HelmSource the chart, its version and digest and, when its values
files come from a GitSource, that source's URL and commit. The App, its source and the Secrets
they name say the rest (values, credentials, CA bundle). Everything is taken pinned: the artifact
and the chart by digest, from the agent's cache for the App's namespace when it is there (the
CLI on the agent's machine), else fetched with the source's credentials and refused unless the
digest is the recorded one; the values files at the recorded commit.

The CLI's fetch rules apply (``FetchRules()``): the person running ``tether status`` reads the
Secrets with their own Kubernetes access. A GitSource of values files is fetched without its
Secret (public repositories, or ones the machine's git configuration reaches).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from tether.agent import crds
from tether.agent.apps import sync_options
from tether.agent.helmsources import HelmSourceWorkers, pinned_fetcher, wanted_chart
from tether.agent.ocisources import OCISourceWorkers, oci_auth
from tether.agent.repositoryaccess import SourceAccess, repository_access
from tether.agent.specs import AppSpec, HelmSourceSpec, OCISourceSpec
from tether.agent.specs import SourceSpec as GitSourceSpec
from tether.cluster.client import KubeClient
from tether.core import Revision
from tether.errors import ClusterError, SourceError
from tether.reconcile.run import SourceSpec as SyncSource
from tether.reconcile.status import PinnedSource
from tether.source import (
    Artifact,
    ChartArtifact,
    FetchRules,
    default_cache_dir,
    fetch,
    fetch_chart,
)
from tether.source.oci import fetch_artifact_async


async def applied_source(
    client: KubeClient, app: str, recorded: dict[str, str]
) -> PinnedSource | None:
    """The HelmSource or OCISource render App ``app`` (``namespace.name``) last applied, as
    ``recorded`` in its inventory; None when no App of that name uses such a source (an app
    synced by the CLI, or one on a GitSource, whose inventory names its source in full)."""
    namespace, _, name = app.partition(".")
    try:
        found = await _get(client, "App", namespace, name)
    except ClusterError:
        return None  # Apps this person may not read: compared as the inventory alone allows
    if found is None:
        return None
    spec = AppSpec.of(found)
    if spec.source_kind == "OCISource":
        return PinnedSource(await _oci(client, spec, recorded), sync_options(spec).keys)
    if spec.source_kind == "HelmSource" and spec.chart is not None:
        return PinnedSource(await _helm(client, spec, recorded), sync_options(spec).keys)
    return None


async def _get(client: KubeClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        resource = await client.resource(crds.API_VERSION, kind)
    except ClusterError:
        return None  # Tether's CRDs are not installed: no agent runs here
    return await client.get(resource, namespace, name)


async def _source(client: KubeClient, kind: str, key: str) -> dict[str, Any]:
    namespace, _, name = key.partition("/")
    found = await _get(client, kind, namespace, name)
    if found is None:
        raise SourceError(f"{kind} {key} not found: the App's source was deleted or renamed")
    return found


def _recorded_digest(recorded: dict[str, str], field: str, spec: AppSpec) -> str:
    digest = recorded.get(field, "")
    if not digest.startswith("sha256:"):
        raise SourceError(f"App {spec.key}: its inventory records no digest of what it applied")
    return digest


async def _oci(client: KubeClient, spec: AppSpec, recorded: dict[str, str]) -> SyncSource:
    """``spec.path`` of the OCISource's artifact at the recorded digest."""
    source = OCISourceSpec.of(await _source(client, "OCISource", spec.source))
    digest = _recorded_digest(recorded, "revision", spec)
    access = await repository_access(client, FetchRules(), SourceAccess.of(source.kind, source))
    pulled = await fetch_artifact_async(
        f"{source.url}@{digest}", oci_auth(access), OCISourceWorkers.cache_dir(source)
    )
    revision = Revision(pulled.url, pulled.tag, pulled.digest)
    return SyncSource(
        revision.url,
        spec.path,
        digest,
        fetcher=lambda _url, _ref: Artifact(revision, pulled.root),
    )


async def _helm(client: KubeClient, spec: AppSpec, recorded: dict[str, str]) -> SyncSource:
    """The HelmSource's chart at the recorded version and digest, with the values files of
    the values GitSource at the recorded commit."""
    assert spec.chart is not None
    source = HelmSourceSpec.of(await _source(client, "HelmSource", spec.source))
    wanted = wanted_chart(spec)
    assert wanted is not None
    version = recorded.get("chartVersion", "")
    digest = _recorded_digest(recorded, "chartDigest", spec)
    access = await repository_access(client, FetchRules(), SourceAccess.of(source.kind, source))
    cache = HelmSourceWorkers.cache_dir(source)
    chart_source = HelmSourceWorkers.chart_source(source, wanted, access)

    def fetch_again(exact: str) -> ChartArtifact:
        return fetch_chart(replace(chart_source, version=exact), cache)

    cached = ChartArtifact(
        wanted[0],
        version,
        digest,
        cache / f"sha256-{digest.removeprefix('sha256:')}.tgz",
        recorded.get("chartRepository", ""),
    )
    fetcher = pinned_fetcher(cached, fetch_again)
    chart = replace(spec.chart, repository=source.url)
    if not spec.values_source:
        return SyncSource("", spec.path, chart=chart, chart_fetcher=fetcher)
    values = GitSourceSpec.of(await _source(client, "GitSource", spec.values_source))
    commit = recorded.get("ref", "")
    if not commit:
        raise SourceError(
            f"App {spec.key}: its inventory records no commit of the values GitSource "
            f"{values.key}; sync it again"
        )
    git = functools.partial(fetch, cache_dir=default_cache_dir() / "tenants" / values.namespace)
    return SyncSource(
        values.url, spec.path, commit, fetcher=git, chart=chart, chart_fetcher=fetcher
    )
