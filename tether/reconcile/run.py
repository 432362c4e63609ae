"""A whole sync or diff of one app from its source: fetch → render → engine → record.

This is the one place where errors become a result: every ``TetherError`` raised below is caught
here once, turned into a failed ``SyncReport`` and recorded in the audit store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.audit import AuditStore, SyncRecord
from tether.cluster.client import KubeClient, Resource
from tether.cluster.kubeconfig import Connection
from tether.core import Action, ChangeSet, HealthReport, HealthStatus, Manifest, ObjectRef, Revision
from tether.core.compare import unified_diff
from tether.core.repopath import UnsafePath, normal_path
from tether.errors import AuditError, TenancyViolation, TetherError
from tether.policy.access import Tenancy, path_violations
from tether.policy.config import CONFIG_FILE, parse
from tether.reconcile.charts import Binaries, ChartSpec, load_chart
from tether.reconcile.decrypt import Redactor, decrypt_manifests
from tether.reconcile.engine import SyncEngine
from tether.reconcile.options import SyncOptions
from tether.reconcile.plan import PlannedObject
from tether.render import RenderSettings, render
from tether.source import (
    Artifact,
    ChartArtifact,
    ChartRepositoryAuth,
    ChartSource,
    TokenFile,
    fetch,
    fetch_chart,
    mask_url,
)
from tether.source.oci import OCIAuth, fetch_artifact


@dataclass(frozen=True)
class OCISpec:
    """An OCI artifact (Flux's format) holding the app's manifests: its reference, how to log
    in (a username and a password file, re-read on every fetch), a CA file, plain http, and the
    manifest digests accepted (empty: any)."""

    reference: str
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    plain_http: bool = False
    allowed_digests: tuple[str, ...] = ()

    def auth(self) -> OCIAuth:
        credentials = (
            ChartRepositoryAuth(self.username, Path(self.password_file))
            if self.password_file
            else None
        )
        return OCIAuth(credentials, Path(self.ca_file) if self.ca_file else None, self.plain_http)

    def fetch(self) -> tuple[Path, Revision]:
        """The unpacked artifact and its revision: ``oci://host/repo``, the tag, the digest."""
        artifact = fetch_artifact(self.reference, self.auth(), allowed_digests=self.allowed_digests)
        origin = " ".join(p for p in (artifact.origin, artifact.origin_revision) if p)
        return artifact.root, Revision(
            artifact.url, artifact.tag, artifact.digest, subject=f"from {origin}" if origin else ""
        )


@dataclass(frozen=True)
class SourceSpec:
    """Where an app's desired state lives: a Git URL or local path, a ref, a directory; or a
    Helm chart (``chart``), in that Git source or in a Helm repository (then ``url`` may be
    empty); or an OCI artifact (``oci``; ``url`` is then its reference)."""

    url: str
    path: str = "."
    ref: str | None = None
    token_file: str = ""  # https token, re-read on every fetch (rotation without restart)
    # How to fetch instead of the CLI's way: the agent's, with a tenant's cache, rules and
    # credentials (see tether.agent.sources).
    fetcher: Callable[[str, str | None], Artifact] | None = field(default=None, compare=False)
    chart: ChartSpec | None = None
    oci: OCISpec | None = None
    # How a repository chart is fetched instead of the CLI's way: the agent's, exactly the
    # package its HelmSource resolved (see tether.agent.helmsources).
    chart_fetcher: Callable[[ChartSource], ChartArtifact] | None = field(
        default=None, compare=False
    )


# What the layer above may do to a render between decryption and the engine: the delivery layer
# holds a Deployment at its stable version and adds the candidate beside it, a quarantine puts
# the last good render in place of a bad one. Raising a ``TetherError`` stops the pass with
# nothing applied. It gets the revision rendered and the decrypted manifests.
ManifestShaper = Callable[[Revision, list[Manifest]], Awaitable[list[Manifest]]]


@dataclass
class SyncReport:
    """The outcome of one sync, as shown to people and machines and recorded in the audit."""

    app: str
    source_url: str
    revision: Revision | None
    changes: ChangeSet
    health: HealthReport | None
    error: str
    started_at: datetime
    duration_seconds: float
    dry_run: bool = False
    audit_error: str = ""
    objects: list[PlannedObject] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return not self.error

    @property
    def result(self) -> str:
        if self.error:
            return "failed"
        return "dry-run" if self.dry_run else "succeeded"


@dataclass
class ObjectDiff:
    ref: ObjectRef
    action: str
    diff: str


@dataclass
class DiffReport:
    revision: Revision | None
    diffs: list[ObjectDiff] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not self.diffs


def load_manifests(
    spec: SourceSpec, kustomize: Path | None, options: SyncOptions | None = None
) -> tuple[Revision, list[Manifest], SyncOptions | None]:
    """Fetch the source (Git at its ref, or the OCI artifact) and render its path; with
    ``options.team`` set, read that
    team's limits from the repository's tether.yaml at the same revision. The path must be
    one the team (or Project) may deploy from, and the render reads nothing outside those
    paths (symlinks, kustomize bases, patches and generator files included)."""
    app = options.app if options is not None else ""
    path = source_path(app, spec.path)
    if spec.oci is not None:
        root, revision = spec.oci.fetch()
    else:
        artifact = git_fetcher(spec)(spec.url, spec.ref)
        root, revision = artifact.root, artifact.revision
    if options is not None:
        options = _limited(options, root, path)
    tenancy = options.tenancy if options is not None else None
    limits = tenancy.path_limits() if tenancy is not None else None
    settings = RenderSettings(kustomize=kustomize, read_limits=limits)
    manifests = render(root, path, settings)
    return revision, manifests, options


def git_fetcher(spec: SourceSpec) -> Callable[[str, str | None], Artifact]:
    """How ``spec``'s Git source is fetched: the agent's way for a tenant's source, else the
    CLI's (with the token file, when one is given)."""
    if spec.fetcher is not None:
        return spec.fetcher
    credentials = TokenFile(Path(spec.token_file)) if spec.token_file else None
    return functools.partial(fetch, credentials=credentials)


def source_path(app: str, path: str) -> str:
    """``path`` in normal form; an error naming the app and the path when it is refused."""
    try:
        return normal_path(path)
    except UnsafePath as exc:
        who = f"app {app!r}: " if app else ""
        raise TetherError(f"{who}source path {path!r} is refused: {exc}") from exc


def _limited(options: SyncOptions, root: Path | None, path: str | None) -> SyncOptions:
    """With ``options.team`` set, ``options`` with that team's limits from the repository's
    tether.yaml at the same revision, ``path`` checked against them (None: not in the repo)."""
    if not (options.team or options.tenancy):
        return options
    if options.team and root is None:
        raise TenancyViolation(f"--team {options.team}: a team's limits need a Git source")
    tenancy = team_tenancy(root, options.team) if root and options.team else options.tenancy
    assert tenancy is not None
    refused = path_violations(tenancy, path) if path is not None else []
    if refused:
        raise TenancyViolation(f"app {options.app!r}: nothing was applied: {refused[0]}")
    return replace(options, tenancy=tenancy)


async def load_source(
    spec: SourceSpec,
    binaries: Binaries,
    options: SyncOptions,
    client: KubeClient,
    redactor: Redactor,
) -> tuple[Revision, list[Manifest], SyncOptions]:
    """``load_manifests``, or for a chart ``load_chart`` (which needs the cluster)."""
    if spec.chart is None:
        revision, manifests, checked = await asyncio.to_thread(
            load_manifests, spec, binaries.kustomize, options
        )
        return revision, manifests, checked or options
    in_repository = None if spec.chart.repository else source_path(options.app, spec.chart.chart)
    fetched: Artifact | None = None
    if spec.url:  # the chart, or its values files, are in Git: the team's limits come first
        fetched = await asyncio.to_thread(git_fetcher(spec), spec.url, spec.ref)
    options = _limited(options, fetched.root if fetched else None, in_repository)
    limits = options.tenancy.path_limits() if options.tenancy is not None else None
    revision, manifests = await load_chart(
        fetched,
        spec.chart,
        client,
        options,
        redactor,
        binaries,
        limits,
        fetch=spec.chart_fetcher or fetch_chart,
    )
    return revision, manifests, options


def _recorded_source(spec: SourceSpec, revision: Revision, options: SyncOptions) -> dict[str, str]:
    """What the inventory records about the source, for ``tether status``."""
    recorded = {
        "url": mask_url(spec.url),
        "path": spec.path,
        "ref": revision.ref if spec.oci is not None else spec.ref or "",
        "revision": revision.commit,
        "namespace": options.namespace,
    }
    if spec.chart is not None:
        recorded["path"] = "" if spec.chart.repository else spec.chart.chart
        recorded["chart"] = spec.chart.chart
        recorded["chartRepository"] = mask_url(spec.chart.repository)
        recorded["chartRevision"] = f"{revision.ref}@{revision.commit}"
        if spec.chart.repository:  # the revision's ref is "chart NAME VERSION"
            recorded["chartVersion"] = revision.ref.rpartition(" ")[2]
            recorded["chartDigest"] = revision.commit
    return recorded


def team_tenancy(root: Path, team: str) -> Tenancy:
    """``team``'s limits from ``tether.yaml`` at the root of the repository."""
    config_file = root / CONFIG_FILE
    if config_file.is_symlink():
        raise TenancyViolation(
            f"--team {team}: {CONFIG_FILE} is a symlink; the teams' limits are read only from "
            "a regular file at the repository root"
        )
    if not config_file.is_file():
        raise TenancyViolation(
            f"--team {team}: the repository has no {CONFIG_FILE} declaring teams"
        )
    config = parse(config_file.read_text(), CONFIG_FILE)
    found = config.team(team)
    if found is None:
        names = ", ".join(t.name for t in config.teams) or "none"
        raise TenancyViolation(
            f"--team {team}: {CONFIG_FILE} declares no such team (teams: {names})"
        )
    return found.tenancy()


async def run_sync(
    spec: SourceSpec,
    options: SyncOptions,
    connection: Connection,
    *,
    audit: AuditStore | None,
    actor: str,
    kustomize: Path | None = None,
    client: KubeClient | None = None,
    helm: Path | None = None,
    shape: ManifestShaper | None = None,
) -> SyncReport:
    """One sync pass of ``spec`` into the cluster, recorded in ``audit`` whatever happens.

    ``client`` lets a long-running caller (the agent) share one connection pool; ``shape``
    lets it change the render before it is planned (see ``ManifestShaper``).
    """
    started, clock = datetime.now(UTC), time.monotonic()
    revision: Revision | None = None
    changes = ChangeSet(dry_run=options.dry_run)
    health: HealthReport | None = None
    error = ""
    objects: list[PlannedObject] = []
    redactor = Redactor()
    try:
        async with contextlib.AsyncExitStack() as stack:
            own = client
            if own is None:
                own = await stack.enter_async_context(KubeClient(connection, options.concurrency))
            revision, manifests, options = await load_source(
                spec, Binaries(kustomize, helm), options, own, redactor
            )
            recorded = _recorded_source(spec, revision, options)
            writer = await _writer(stack, own, connection, options)
            manifests = await decrypt_manifests(own, manifests, options.keys, redactor)
            if shape is not None:
                manifests = await shape(revision, manifests)
            result = await SyncEngine(writer, options, inventory_client=own).sync(
                manifests, recorded
            )
        changes, health, objects = result.changes, result.health, result.plan.objects
        error = _health_error(health, options)
    except TetherError as failure:
        error = str(failure)
        changes = failure.changes or changes
    report = SyncReport(
        options.app,
        # a repository chart without a Git source: the chart's repository is the source
        mask_url(spec.url or (spec.chart.repository if spec.chart else "")),
        revision,
        _scrubbed(changes, redactor),
        health,
        redactor.scrub(error),
        started,
        time.monotonic() - clock,
        options.dry_run,
        objects=objects,
    )
    return await _recorded(report, audit, actor)


async def run_render(
    revision: Revision,
    manifests: list[Manifest],
    options: SyncOptions,
    connection: Connection,
    *,
    audit: AuditStore | None,
    actor: str,
    client: KubeClient,
    source_url: str,
) -> SyncReport:
    """Apply ``manifests`` as rendered once from ``revision`` (a render kept in the audit store,
    already free of secret values) without fetching or rendering anything: what a rollback does
    when Git may be down. Planned, applied and recorded like a sync."""
    started, clock = datetime.now(UTC), time.monotonic()
    changes, health, error = ChangeSet(dry_run=options.dry_run), None, ""
    objects: list[PlannedObject] = []
    recorded = {
        "url": source_url,
        "revision": revision.commit,
        "ref": revision.ref,
        "namespace": options.namespace,
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            writer = await _writer(stack, client, connection, options)
            engine = SyncEngine(writer, options, inventory_client=client)
            result = await engine.sync(manifests, recorded)
        changes, health, objects = result.changes, result.health, result.plan.objects
        error = _health_error(health, options)
    except TetherError as failure:
        error = str(failure)
        changes = failure.changes or changes
    report = SyncReport(
        options.app,
        source_url,
        revision,
        changes,
        health,
        error,
        started,
        time.monotonic() - clock,
        options.dry_run,
        objects=objects,
    )
    return await _recorded(report, audit, actor)


async def run_delete(
    options: SyncOptions,
    connection: Connection,
    *,
    audit: AuditStore | None,
    actor: str,
    client: KubeClient,
) -> SyncReport:
    """Delete everything app ``options.app`` applied, as its (possibly impersonated) identity,
    recorded in ``audit`` like a sync whose result is the deletion."""
    started, clock = datetime.now(UTC), time.monotonic()
    changes, error = ChangeSet(), ""
    try:
        async with contextlib.AsyncExitStack() as stack:
            writer = await _writer(stack, client, connection, options)
            changes = await SyncEngine(writer, options, inventory_client=client).delete_app()
    except TetherError as failure:
        error = f"app {options.app!r}: deleting its objects failed: {failure}"
        changes = failure.changes or changes
    report = SyncReport(
        options.app, "", None, changes, None, error, started, time.monotonic() - clock
    )
    return await _recorded(report, audit, actor)


async def run_heal(
    objects: list[tuple[Resource, dict[str, Any]]],
    options: SyncOptions,
    connection: Connection,
    *,
    audit: AuditStore | None,
    actor: str,
    client: KubeClient,
    revision: Revision,
    source_url: str,
) -> SyncReport:
    """Put back drifted objects by applying again exactly what the last successful sync of
    ``revision`` applied (and dry-ran), without fetching, rendering or planning the whole app.
    Recorded in ``audit`` like a sync. The caller falls back to a full pass on any error, so
    the error text (which may echo a decrypted value) is not shown, only recorded as failed."""
    started, clock = datetime.now(UTC), time.monotonic()
    changes, error = ChangeSet(), ""
    try:
        async with contextlib.AsyncExitStack() as stack:
            writer = await _writer(stack, client, connection, options)
            await asyncio.gather(
                *(writer.apply(resource, body, dry_run=False) for resource, body in objects)
            )
        for _, body in objects:
            changes.add(ObjectRef.of(body), Action.CONFIGURED, "drift corrected")
    except TetherError as failure:
        error = (
            f"app {options.app!r}: putting drifted objects back failed ({type(failure).__name__})"
        )
    report = SyncReport(
        options.app, source_url, revision, changes, None, error, started, time.monotonic() - clock
    )
    return await _recorded(report, audit, actor)


async def _writer(
    stack: contextlib.AsyncExitStack,
    client: KubeClient,
    connection: Connection,
    options: SyncOptions,
) -> KubeClient:
    """The client that writes the app's objects: ``client``, or one impersonating the
    ServiceAccount the app's Project or team names, so the API server's RBAC applies too."""
    if not options.impersonate:
        return client
    return client.impersonating(options.impersonate)  # over the caller's connection pools


async def _recorded(report: SyncReport, audit: AuditStore | None, actor: str) -> SyncReport:
    """``report``, written to the audit store; a failure to write is kept in ``audit_error``."""
    if audit is not None:
        try:
            await asyncio.to_thread(audit.record, _audit_record(report, actor))
        except AuditError as failure:
            report.audit_error = str(failure)
    return report


def _scrubbed(changes: ChangeSet, redactor: Redactor) -> ChangeSet:
    """The ChangeSet with decrypted values removed from every reason (server errors echo input)."""
    if not redactor.values:
        return changes
    cleaned = ChangeSet(dry_run=changes.dry_run)
    for change in changes.changes:
        cleaned.add(change.ref, change.action, redactor.scrub(change.reason))
    return cleaned


def _health_error(health: HealthReport | None, options: SyncOptions) -> str:
    if health is None or health.status is HealthStatus.HEALTHY:
        return ""
    worst = health.not_healthy()[:5]
    listed = "; ".join(f"{o.ref} {o.status.value}: {o.message}" for o in worst)
    settled = not any(
        o.status in (HealthStatus.PROGRESSING, HealthStatus.MISSING) for o in health.objects
    )
    when = (
        "failed and stayed so for the grace period"
        if settled
        else (f"not healthy after {options.timeout:.0f}s")
    )
    return f"{when}: {listed}"


def _audit_record(report: SyncReport, actor: str) -> SyncRecord:
    return SyncRecord(
        app=report.app,
        source_url=report.source_url,
        revision=report.revision,
        changes=report.changes,
        result=report.result,
        error=report.error,
        started_at=report.started_at,
        duration_seconds=report.duration_seconds,
        actor=actor,
        health=report.health.status.value if report.health else "",
    )


async def run_diff(
    spec: SourceSpec,
    options: SyncOptions,
    connection: Connection,
    *,
    kustomize: Path | None = None,
    helm: Path | None = None,
    shape: ManifestShaper | None = None,
) -> DiffReport:
    """What a sync would change, object by object, as unified diffs (Secret values masked);
    ``shape`` changes the render before it is planned, as for ``run_sync``."""
    redactor = Redactor()
    async with KubeClient(connection, options.concurrency) as own:
        try:
            revision, manifests, options = await load_source(
                spec, Binaries(kustomize, helm), options, own, redactor
            )
        except TetherError as error:
            # a chart's template may put a decrypted value in its own error (``fail``)
            if not redactor.values:
                raise
            raise type(error)(redactor.scrub(str(error))) from None
        async with KubeClient(
            connection, options.concurrency, impersonate=options.impersonate
        ) as client:
            return await _diff(revision, manifests, options, own, client, redactor, shape)


async def _diff(
    revision: Revision,
    manifests: list[Manifest],
    options: SyncOptions,
    own: KubeClient,
    client: KubeClient,
    redactor: Redactor,
    shape: ManifestShaper | None = None,
) -> DiffReport:
    """The plan of ``manifests``, as per-object diffs (``own`` reads keys and inventory)."""
    manifests = await decrypt_manifests(own, manifests, options.keys, redactor)
    if shape is not None:
        manifests = await shape(revision, manifests)
    engine = SyncEngine(client, options, inventory_client=own)
    plan, previous = await engine.plan(manifests)
    report = DiffReport(revision)
    for obj in plan.objects:
        if not obj.checked:
            report.diffs.append(ObjectDiff(obj.ref, "create (after its CRD or Namespace)", ""))
        elif obj.action is not Action.UNCHANGED:
            text = unified_diff(
                obj.ref,
                redactor.scrub_object(obj.live),
                redactor.scrub_object(obj.dry_run),
                obj.manifest.decrypted,
            )
            report.diffs.append(ObjectDiff(obj.ref, obj.action.value, redactor.scrub(text)))
    if plan.errors:
        errors = "\n  ".join(plan.errors[:20])
        raise TetherError(redactor.scrub(f"the server refused the dry-run:\n  {errors}"))
    if options.prune:
        for ref, live in await engine.prune_candidates(previous, plan):
            text = unified_diff(ref, redactor.scrub_object(live), None)
            report.diffs.append(ObjectDiff(ref, "prune", redactor.scrub(text)))
    return report
