"""An app whose manifests come from a Helm chart: fetch, values, capabilities, render.

    ChartSpec(chart, repository, version, values_files, values)   what the CLI (or an App) asks
    load_chart(git_artifact, spec, client, options, redactor, binaries, read_limits)
        -> (revision, manifests, the Git tree or None)

The chart is a directory of the Git source (``repository`` empty), or a chart of a Helm HTTP
repository or an OCI registry (``oci://``), fetched and verified by
``tether.source.fetch_chart``. Values files are read from
the Git source (or, without one, from local paths) with Tether's YAML reader; a SOPS-encrypted
values file is decrypted in memory with the sync's keys, and every decrypted value is given to
the sync's ``Redactor``. The cluster's Kubernetes version and API versions (kinds included) are
read by discovery (cached per client, see ``KubeClient.served_apis``) and passed to
``helm template``, so ``.Capabilities`` tells the truth. Then
the chart is rendered by ``tether.render.render_chart``; what comes out is synced like any
other render (CRDs first, hooks as decision record 0016 says).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tether.cluster.client import ApiError, KubeClient
from tether.core import Manifest, Revision
from tether.errors import RenderError
from tether.reconcile.decrypt import Redactor, decrypt_values
from tether.reconcile.options import SyncOptions
from tether.render import (
    Capabilities,
    Chart,
    ReadLimits,
    RenderSettings,
    SetValue,
    merge_values,
    parse_values,
    read_patch,
    read_values,
)
from tether.render import render_chart as render_with_helm
from tether.source import (
    Artifact,
    ChartArtifact,
    ChartRepositoryAuth,
    ChartSource,
    fetch_chart,
    mask_url,
)

VALUES_KINDS = ("ConfigMap", "Secret")
DEFAULT_VALUES_KEY = "values.yaml"


@dataclass(frozen=True)
class ValuesReference:
    """Values kept in a ConfigMap or Secret of the App's namespace (``spec.chart.valuesFrom``).

    ``values_key`` holds a YAML mapping of values (SOPS-encrypted allowed), or, with
    ``target_path`` (``db.password``), one value put at that path as a string. A missing object
    or key fails the sync unless ``optional``."""

    kind: str
    name: str
    namespace: str
    values_key: str = DEFAULT_VALUES_KEY
    target_path: str = ""
    optional: bool = False

    @property
    def label(self) -> str:
        return f"valuesFrom {self.kind} {self.namespace}/{self.name} key {self.values_key!r}"


@dataclass(frozen=True)
class ChartSpec:
    """A chart to render for an app.

    ``chart``: a path in the Git source, or, with ``repository``, a chart name in that Helm
    repository. ``version``: a semver range (repository charts only). ``values_files``: in the
    Git source (or local paths when there is no Git source), merged in order, then ``values``
    on top. ``release``: the Helm release name (default: the app's name).
    """

    chart: str
    repository: str = ""
    version: str | None = None
    values_files: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    release: str = ""
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    include_crds: bool = True
    patches: tuple[str, ...] = ()  # strategic-merge patches in the Git source, after rendering
    plain_http: bool = False  # an oci:// registry served over http
    allowed_digests: tuple[str, ...] = ()  # oci:// only: the chart manifest digests accepted
    values_from: tuple[ValuesReference, ...] = ()  # after the files, before ``values``
    set_values: tuple[SetValue, ...] = ()  # --set/--set-string, passed to helm, on top of all

    def source(self) -> ChartSource:
        auth = (
            ChartRepositoryAuth(self.username, Path(self.password_file))
            if self.password_file
            else None
        )
        return ChartSource(
            self.repository,
            self.chart,
            self.version,
            auth=auth,
            ca_file=Path(self.ca_file) if self.ca_file else None,
            plain_http=self.plain_http,
            allowed_digests=self.allowed_digests,
        )


@dataclass(frozen=True)
class Binaries:
    """The tools a render may run."""

    kustomize: Path | None = None
    helm: Path | None = None


async def cluster_capabilities(client: KubeClient) -> Capabilities:
    """The server's version and every API version it serves, with each of its kinds (from the
    client's discovery cache, which a sync drops once it has applied or pruned a CRD)."""
    served = await client.served_apis()
    return Capabilities(served.kube_version, served.api_versions)


async def load_chart(
    git: Artifact | None,
    spec: ChartSpec,
    client: KubeClient,
    options: SyncOptions,
    redactor: Redactor,
    binaries: Binaries,
    read_limits: ReadLimits | None = None,
    fetch: Callable[[ChartSource], ChartArtifact] = fetch_chart,
) -> tuple[Revision, list[Manifest]]:
    """Fetch the chart (from ``git``, the fetched Git source, or its Helm repository), read and
    decrypt the values (from ``git``, within ``read_limits``), discover the cluster, render.
    Returns the revision (the Git commit for a chart in Git; the chart's version and digest for
    a repository chart) and the manifests. ``fetch`` fetches a repository chart (the agent pins
    the package its HelmSource resolved)."""
    root = git.root if git is not None else None
    git_revision = git.revision if git is not None else None
    settings = RenderSettings(
        kustomize=binaries.kustomize, helm=binaries.helm, read_limits=read_limits
    )
    if spec.repository:
        package = await asyncio.to_thread(fetch, spec.source())
        chart_path, label, tree = package.path, f"{spec.chart}-{package.version}", None
        revision = Revision(
            mask_url(spec.repository),
            f"chart {spec.chart} {package.version}",
            package.digest,
            subject=f"values from {git_revision.url}@{git_revision.short}" if git_revision else "",
        )
    else:
        if root is None or git_revision is None:
            raise RenderError(
                f"chart {spec.chart!r} is a path in a Git repository: give the repository "
                "(--source), or the Helm repository the chart is published in (--repo)"
            )
        chart_path, label, tree = root / spec.chart, spec.chart, root
        revision = git_revision
    layers = []
    for values_file in spec.values_files:
        values = await asyncio.to_thread(read_values, root, values_file, settings)
        layers.append(await decrypt_values(client, values, values_file, options.keys, redactor))
    reader = client.impersonating(options.impersonate) if options.impersonate else client
    for reference in spec.values_from:
        referenced = await _referenced_values(reader, reference, settings, options, redactor)
        if referenced is not None:
            layers.append(referenced)
    layers.append(dict(spec.values))
    patches = []
    for patch in spec.patches:
        if root is None:
            raise RenderError(f"post-render patch {patch!r} is a path in the Git source: give it")
        patches.append(await asyncio.to_thread(read_patch, root, patch, settings))
    capabilities = await cluster_capabilities(client)
    chart = Chart(
        chart_path,
        label,
        spec.release or options.app.partition(".")[2],
        options.namespace,
        merge_values(layers),
        capabilities,
        spec.include_crds,
        tree,
        tuple(patches),
        spec.set_values,
    )
    manifests = await asyncio.to_thread(render_with_helm, chart, settings)
    served = _served_by_chart_crds(manifests) - set(capabilities.api_versions)
    if served:
        # Helm installs a chart's crds/ before rendering its templates, so they see those kinds
        # on the first install too: render again as if they were served (they are, once the
        # first stage is applied).
        widened = Capabilities(
            capabilities.kube_version, tuple(sorted({*capabilities.api_versions, *served}))
        )
        chart = replace(chart, capabilities=widened)
        manifests = await asyncio.to_thread(render_with_helm, chart, settings)
    return revision, manifests


def _served_by_chart_crds(manifests: list[Manifest]) -> set[str]:
    """``group/version`` and ``group/version/Kind`` of every served version of the CRDs in the
    chart's ``crds/`` directories (the ones Helm installs before rendering templates)."""
    served: set[str] = set()
    for manifest in manifests:
        if not manifest.is_crd or "/crds/" not in f"/{manifest.source.path}":
            continue
        spec = manifest.body.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            if isinstance(version, dict) and version.get("served") and group and kind:
                served |= {
                    f"{group}/{version.get('name')}",
                    f"{group}/{version.get('name')}/{kind}",
                }
    return served


async def _referenced_values(
    client: KubeClient,
    reference: ValuesReference,
    settings: RenderSettings,
    options: SyncOptions,
    redactor: Redactor,
) -> dict[str, Any] | None:
    """The values ``reference`` names, read as the App's identity (``client``); None when it is
    optional and missing. Every value of a Secret is given to ``redactor``; a SOPS-encrypted
    document is decrypted in memory like a values file."""
    text = await _referenced_text(client, reference, options)
    if text is None:
        return None
    secret = reference.kind == "Secret"
    if secret:
        redactor.add(text)
    if reference.target_path:
        if secret:
            redactor.add(text.strip())
        return _at_path(reference, text)
    values = parse_values(text, reference.label, settings, secret=secret)
    values = await decrypt_values(client, values, reference.label, options.keys, redactor)
    if secret:
        for leaf in _leaves(values):
            redactor.add(leaf)
    return values


async def _referenced_text(
    client: KubeClient, reference: ValuesReference, options: SyncOptions
) -> str | None:
    if reference.kind not in VALUES_KINDS:
        raise RenderError(f"{reference.label}: kind must be ConfigMap or Secret")
    who = f"as {options.impersonate}" if options.impersonate else "with the sync's credentials"
    try:
        obj = await client.get(
            await client.resource("v1", reference.kind), reference.namespace, reference.name
        )
    except ApiError as error:
        if error.status in (401, 403):
            raise RenderError(
                f"{reference.label}: may not be read {who}: give that identity `get` on "
                f"{reference.kind.lower()}s in {reference.namespace}; nothing was applied"
            ) from None
        raise
    if obj is None:
        if reference.optional:
            return None
        raise RenderError(
            f"{reference.label}: {reference.kind} {reference.namespace}/{reference.name} not "
            "found: create it, or mark the reference optional: true; nothing was applied"
        )
    data = obj.get("data") or {}
    raw = data.get(reference.values_key)
    if raw is None:
        if reference.optional:
            return None
        keys = ", ".join(sorted(data)) or "none"
        raise RenderError(
            f"{reference.label}: the {reference.kind} has no key {reference.values_key!r} "
            f"(its keys: {keys}); set valuesKey, or mark the reference optional: true; nothing "
            "was applied"
        )
    if reference.kind == "ConfigMap":
        return str(raw)
    try:
        return base64.b64decode(str(raw), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise RenderError(f"{reference.label}: not UTF-8 text; nothing was applied") from None


def _at_path(reference: ValuesReference, text: str) -> dict[str, Any]:
    """``{"a": {"b": text}}`` for target path ``a.b`` (``\\.`` is a dot inside a key)."""
    keys = [
        key.replace("\x00", ".") for key in reference.target_path.replace("\\.", "\x00").split(".")
    ]
    if any(not key or "[" in key for key in keys):
        raise RenderError(
            f"{reference.label}: targetPath {reference.target_path!r} is not a dotted path of "
            "keys (a.b.c; write \\. for a dot inside a key; list indexes are not supported)"
        )
    value: Any = text
    for key in reversed(keys):
        value = {key: value}
    return dict(value)


def _leaves(values: Any) -> list[str]:
    if isinstance(values, dict):
        return [leaf for value in values.values() for leaf in _leaves(value)]
    if isinstance(values, list):
        return [leaf for value in values for leaf in _leaves(value)]
    return [] if values is None or isinstance(values, bool) else [str(values)]
