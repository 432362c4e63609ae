"""Sources in OCI registries: plain-manifest artifacts and Helm charts, digest-verified, cached.

    fetch_artifact("oci://host/apps/web:1.4", auth) -> FetchedArtifact(root, digest, tag, revision)
    fetch_oci_chart("oci://host/charts/shop", "^2", auth) -> ChartArtifact(name, version, digest, …)
    push_artifact("oci://host/apps/web:1.4", Path("deploy"), source, revision, auth) -> digest

An artifact is Flux's format (``tether.source.oci_artifact``): ``flux push artifact`` and
``tether push artifact`` write it, Flux's ``OCIRepository`` and Tether read it. A chart is what
``helm push`` writes: config ``application/vnd.cncf.helm.config.v1+json`` (Chart.yaml as JSON),
one layer ``application/vnd.cncf.helm.chart.content.v1.tar+gzip`` (the packaged chart). For a
chart the tags are listed and the highest version in the semver range is picked, exactly as for
a Helm HTTP repository (``tether.source.semver``); Helm writes ``+`` in a version as ``_`` in the
tag, read back here.

Digest rules (see docs/decisions/0022-oci-artifacts.md):

- a tag is resolved to the manifest's digest on every fetch; ``@sha256:…`` pins one;
- the manifest's bytes must hash to that digest, each blob to its descriptor's digest and size;
- with ``allowed_digests`` given, any other manifest digest is refused before a blob is read;
- the cache is keyed by the manifest digest (artifacts: the unpacked tree under
  ``oci/sha256-<hex>/``; charts: the package under ``charts/``, checked again on reuse), so a
  moved tag is seen at once and an unchanged one costs one manifest request; an artifact pinned
  by digest that is already unpacked costs none (its content cannot have changed).

``FetchedArtifact.revision`` is ``TAG@sha256:…`` (the digest alone for a pinned reference), what
the sync records; the annotations ``org.opencontainers.image.source`` and ``.revision`` say where
the content came from (``origin`` and ``origin_revision``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tether.core.paths import cache_root
from tether.errors import SourceError
from tether.source.charts import ChartArtifact, chart_cache_dir, store_package
from tether.source.credentials import BasicAuth, CredentialProvider, TokenFile
from tether.source.oci_artifact import (
    FLUX_CONTENT,
    MAX_LAYER,
    REVISION_ANNOTATION,
    SOURCE_ANNOTATION,
    pack,
    read_manifest,
    unpack,
)
from tether.source.oci_client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    OCIAuth,
    RegistryClient,
    sha256_digest,
)
from tether.source.oci_reference import OCIReference
from tether.source.semver import RangeError, parse_range, versions

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MAX_CHART = 32 * 1024 * 1024
MAX_CONFIG = 1024 * 1024
_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
_SHOWN = 6

__all__ = [
    "BasicAuth",
    "CredentialProvider",
    "FetchedArtifact",
    "OCIAuth",
    "OCIReference",
    "TokenFile",
    "fetch_artifact",
    "fetch_artifact_async",
    "fetch_oci_chart",
    "fetch_oci_chart_async",
    "oci_cache_dir",
    "push_artifact",
]


@dataclass(frozen=True)
class FetchedArtifact:
    """A verified artifact unpacked in the cache.

    ``root``: the directory holding its files (shared: never write into it). ``digest``: the
    manifest's ``sha256:…``. ``tag``: the tag it was fetched by ("" when pinned by digest).
    ``revision``: ``TAG@DIGEST`` or the digest. ``url``: ``oci://host/repository``.
    ``origin`` / ``origin_revision``: the source and revision annotations, when present.
    """

    root: Path
    digest: str
    tag: str
    revision: str
    url: str = ""
    origin: str = ""
    origin_revision: str = ""


def oci_cache_dir() -> Path:
    """``oci/`` under Tether's cache: one unpacked tree per manifest digest."""
    return cache_root() / "oci"


def _reference(ref: OCIReference | str) -> OCIReference:
    return ref if isinstance(ref, OCIReference) else OCIReference.parse(ref)


def _check_allowed(ref: OCIReference, digest: str, allowed: tuple[str, ...]) -> None:
    if allowed and digest not in allowed:
        raise SourceError(
            f"{ref.display} resolves to {digest}, which is not in the allowed digests "
            f"({', '.join(allowed)}); refused, nothing was applied. If this artifact is "
            "trusted, add its digest to the allow-list"
        )


def _read_manifest(
    registry: RegistryClient, ref: OCIReference, allowed: tuple[str, ...]
) -> tuple[str, list[Descriptor], Descriptor, dict[str, str]]:
    if not ref.reference:
        raise SourceError(f"{ref.display}: give a tag (:TAG) or a digest (@sha256:…)")
    body, media_type, digest = registry.manifest(ref.reference, _MANIFESTS)
    _check_allowed(ref, digest, allowed)
    if media_type in (OCI_INDEX, DOCKER_LIST):
        raise SourceError(
            f"{ref.display} is an image index (a multi-platform image), not an artifact; "
            "push the directory with `tether push artifact` or `flux push artifact`"
        )
    config, layers, annotations = read_manifest(body, ref.display)
    return digest, layers, config, annotations


def fetch_artifact(
    ref: OCIReference | str,
    auth: OCIAuth | None = None,
    cache_dir: Path | None = None,
    *,
    allowed_digests: tuple[str, ...] = (),
) -> FetchedArtifact:
    """The artifact ``ref`` names, from the cache when its digest is there, else pulled,
    verified and unpacked. Raises ``SourceError`` naming the registry and the reference."""
    ref = _reference(ref)
    directory = cache_dir or oci_cache_dir()
    if ref.digest and (directory / _cache_name(ref.digest)).is_dir():
        # content addressed: a pinned artifact already verified and unpacked needs no request
        _check_allowed(ref, ref.digest, allowed_digests)
        return _fetched(ref, ref.digest, directory)
    with RegistryClient(ref, auth) as registry:
        digest, layers, _, annotations = _read_manifest(registry, ref, allowed_digests)
        root = directory / _cache_name(digest)
        if not root.is_dir():
            layer = _content_layer(ref, layers)
            data = registry.blob(layer, MAX_LAYER)
            _unpack_into_cache(data, directory, root, ref.display, annotations)
    return _fetched(ref, digest, directory)


def _cache_name(digest: str) -> str:
    return digest.replace(":", "-")


def _fetched(ref: OCIReference, digest: str, directory: Path) -> FetchedArtifact:
    root = directory / _cache_name(digest)
    try:
        annotations = json.loads((directory / f"{_cache_name(digest)}.json").read_text())
    except (OSError, ValueError):
        annotations = {}
    return FetchedArtifact(
        root,
        digest,
        "" if ref.digest else ref.tag,
        digest if ref.digest else f"{ref.tag}@{digest}",
        ref.name,
        annotations.get(SOURCE_ANNOTATION, ""),
        annotations.get(REVISION_ANNOTATION, ""),
    )


async def fetch_artifact_async(
    ref: OCIReference | str,
    auth: OCIAuth | None = None,
    cache_dir: Path | None = None,
    *,
    allowed_digests: tuple[str, ...] = (),
) -> FetchedArtifact:
    """``fetch_artifact`` in a worker thread, for the agent's and the CLI's event loops."""
    return await asyncio.to_thread(
        fetch_artifact, ref, auth, cache_dir, allowed_digests=allowed_digests
    )


def _content_layer(ref: OCIReference, layers: list[Descriptor]) -> Descriptor:
    flux = [layer for layer in layers if layer.media_type == FLUX_CONTENT]
    if len(flux) == 1:
        return flux[0]
    if len(layers) == 1 and layers[0].media_type.endswith(("tar+gzip", "tar.gzip", "tar")):
        return layers[0]
    kinds = ", ".join(sorted({layer.media_type or "?" for layer in layers})) or "none"
    raise SourceError(
        f"{ref.display} is not a plain-manifest artifact: it needs one layer of media type "
        f"{FLUX_CONTENT} (layers: {kinds}); push it with `tether push artifact`"
    )


def _unpack_into_cache(
    data: bytes, directory: Path, root: Path, where: str, annotations: dict[str, str]
) -> None:
    """Unpack into a staging directory, then rename to ``root``; the manifest's annotations go
    next to it (``sha256-<hex>.json``), for a later fetch by digest that needs no request."""
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=directory))
    try:
        unpack(data, staging / "tree", where)
        (staging / "annotations.json").write_text(json.dumps(annotations, sort_keys=True))
        os.replace(staging / "annotations.json", root.with_name(f"{root.name}.json"))
        try:
            (staging / "tree").rename(root)
        except OSError:
            if not root.is_dir():  # not a concurrent fetch that won the race
                raise
    except OSError as error:
        raise SourceError(f"cannot write the OCI cache {directory}: {error.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_oci_chart(
    ref: OCIReference | str,
    version_range: str | None = None,
    auth: OCIAuth | None = None,
    cache_dir: Path | None = None,
    *,
    allowed_digests: tuple[str, ...] = (),
) -> ChartArtifact:
    """The chart package at ``ref`` (``oci://host/path/chart``, or with ``:VERSION`` or
    ``@sha256:…``): the highest version in ``version_range`` (default: the highest release),
    verified, cached. ``ChartArtifact.digest`` is the manifest's digest (what ``helm push``
    prints and what an allow-list names)."""
    ref = _reference(ref)
    if version_range and ref.reference:
        raise SourceError(
            f"{ref.display}: give either a version range or a tag/digest in the reference, not both"
        )
    name = ref.repository.rsplit("/", 1)[-1]
    with RegistryClient(ref, auth) as registry:
        if not ref.reference:
            ref = ref.with_tag(_pick_tag(ref, registry.tags(), version_range))
        digest, layers, config, _ = _read_manifest(registry, ref, allowed_digests)
        if config.media_type != HELM_CONFIG:
            raise SourceError(
                f"{ref.display} is not a Helm chart (config media type {config.media_type!r}, "
                f"expected {HELM_CONFIG}); push charts with `helm push`"
            )
        # `helm push` tags a chart with its version (+ written _); only a chart pinned by
        # digest needs its config blob (Chart.yaml as JSON) to say which version it is
        version = (
            ref.tag.replace("_", "+")
            if ref.tag and not ref.digest
            else _chart_version(ref, registry.blob(config, MAX_CONFIG))
        )
        package = _chart_layer(ref, layers)
        directory = cache_dir or chart_cache_dir()
        cached = directory / f"{package.digest.replace(':', '-')}.tgz"
        if not (cached.is_file() and _same(cached, package)):
            store_package(directory, cached, registry.blob(package, MAX_CHART))
    return ChartArtifact(name, version, digest, cached, ref.display)


async def fetch_oci_chart_async(
    ref: OCIReference | str,
    version_range: str | None = None,
    auth: OCIAuth | None = None,
    cache_dir: Path | None = None,
    *,
    allowed_digests: tuple[str, ...] = (),
) -> ChartArtifact:
    """``fetch_oci_chart`` in a worker thread."""
    return await asyncio.to_thread(
        fetch_oci_chart, ref, version_range, auth, cache_dir, allowed_digests=allowed_digests
    )


def _chart_version(ref: OCIReference, config: bytes) -> str:
    """The ``version`` of the chart's config (its Chart.yaml as JSON), else the tag's."""
    try:
        chart = json.loads(config)
    except ValueError:
        raise SourceError(f"{ref.display}: the chart's config blob is not JSON") from None
    version = chart.get("version") if isinstance(chart, dict) else None
    return str(version) if version else ref.tag.replace("_", "+")


def _same(path: Path, descriptor: Descriptor) -> bool:
    return sha256_digest(path.read_bytes()) == descriptor.digest


def _pick_tag(ref: OCIReference, tags: list[str], version_range: str | None) -> str:
    """The tag of the highest chart version in the range (tags hold ``_`` for ``+``)."""
    by_version = {tag.replace("_", "+"): tag for tag in tags}
    text = version_range or "*"
    try:
        wanted = parse_range(text)
    except RangeError as error:
        raise SourceError(
            f"{ref.display}: invalid version range {text!r}: {error}; write e.g. '1.4.2', "
            "'^1.4', '~1.4' or '>=1.2.0 <2.0.0'"
        ) from None
    version = wanted.highest(by_version)
    if version is None:
        nearest = wanted.nearest(by_version) or [tag for tag, _ in versions(by_version)][:_SHOWN]
        raise SourceError(
            f"{ref.display}: no version matches {text!r} (versions: {', '.join(nearest) or 'none'})"
        )
    return by_version[version]


def _chart_layer(ref: OCIReference, layers: list[Descriptor]) -> Descriptor:
    found = [layer for layer in layers if layer.media_type == HELM_CONTENT]
    if len(found) != 1:
        raise SourceError(
            f"{ref.display}: the chart's manifest has {len(found)} layers of media type "
            f"{HELM_CONTENT}, not one; push the chart again with `helm push`"
        )
    return found[0]


def push_artifact(
    ref: OCIReference | str,
    directory: Path,
    source: str,
    revision: str,
    auth: OCIAuth | None = None,
) -> str:
    """Pack ``directory`` in Flux's format and push it under ``ref``'s tag; its digest."""
    ref = _reference(ref)
    if not ref.tag or ref.digest:
        raise SourceError(f"{ref.display}: push to a tag (oci://HOST/REPOSITORY:TAG)")
    packed = pack(directory, source, revision)
    with RegistryClient(ref, auth) as registry:
        registry.push_blob(packed.layer)
        registry.push_blob(packed.config)
        return registry.push_manifest(ref.tag, packed.manifest, OCI_MANIFEST)
