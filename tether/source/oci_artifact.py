"""Plain-manifest OCI artifacts in Flux's format (what ``flux push artifact`` writes and Flux's
``OCIRepository`` reads), packed and unpacked.

    pack(directory, source, revision) -> Packed(layer, config, manifest)
    unpack(layer_bytes, target)                       # safe extraction, within limits

The format (learnt from Flux's documentation and its ``fluxcd/pkg/oci`` package, written here
from scratch):

- an OCI image manifest (``application/vnd.oci.image.manifest.v1+json``, schemaVersion 2);
- its config blob has media type ``application/vnd.cncf.flux.config.v1+json`` (a small JSON
  document: creation time and the layer's uncompressed digest, like an image config);
- exactly one layer, ``application/vnd.cncf.flux.content.v1.tar+gzip``: a gzipped tarball of
  the directory, paths relative to it;
- manifest annotations ``org.opencontainers.image.source`` (where the content came from, e.g.
  the Git URL), ``org.opencontainers.image.revision`` (e.g. ``main@sha1:…``) and
  ``org.opencontainers.image.created`` (RFC 3339).

Packing is reproducible: entries sorted, owners, times and permission bits normalized
(0644, 0755 for executables and directories), gzip without a timestamp, so the same directory
gives the same layer digest. ``.git`` is left out; symlinks and special files are refused (an
artifact is a plain tree). Unpacking refuses absolute paths, ``..``, links and device files,
more than ``MAX_ENTRIES`` entries or ``MAX_UNPACKED`` bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from tether.errors import SourceError
from tether.source.oci_client import OCI_MANIFEST, Descriptor, sha256_digest

FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
SOURCE_ANNOTATION = "org.opencontainers.image.source"
REVISION_ANNOTATION = "org.opencontainers.image.revision"
CREATED_ANNOTATION = "org.opencontainers.image.created"
MAX_LAYER = 64 * 1024 * 1024
MAX_UNPACKED = 256 * 1024 * 1024
MAX_ENTRIES = 20_000
_SKIPPED = frozenset({".git"})


@dataclass(frozen=True)
class Packed:
    """A directory as an artifact: the layer and config blobs and the manifest's bytes."""

    layer: bytes
    config: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def pack(directory: Path, source: str, revision: str, created: datetime | None = None) -> Packed:
    """``directory`` as a Flux artifact, annotated with ``source`` and ``revision``."""
    if not directory.is_dir():
        raise SourceError(f"{directory} is not a directory: give the directory to push (--path)")
    tarball = _tar(directory)
    layer = gzip.compress(tarball, mtime=0)
    if len(layer) > MAX_LAYER:
        raise SourceError(
            f"{directory} packs to {len(layer) // 1024**2} MiB, more than the "
            f"{MAX_LAYER // 1024**2} MiB an artifact may hold"
        )
    stamp = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = json.dumps(
        {"created": stamp, "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tarball)]}},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    annotations = {
        CREATED_ANNOTATION: stamp,
        SOURCE_ANNOTATION: source,
        REVISION_ANNOTATION: revision,
    }
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor(FLUX_CONFIG, sha256_digest(config), len(config)).to_dict(),
        "layers": [Descriptor(FLUX_CONTENT, sha256_digest(layer), len(layer)).to_dict()],
        "annotations": {key: value for key, value in annotations.items() if value},
    }
    body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    return Packed(layer, config, body)


def _tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in _walk(directory):
            relative = path.relative_to(directory).as_posix()
            info = os.lstat(path)
            entry = tarfile.TarInfo(relative)
            entry.mtime = 0
            entry.uid = entry.gid = 0
            entry.uname = entry.gname = ""
            if stat.S_ISDIR(info.st_mode):
                entry.type, entry.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(entry)
            elif stat.S_ISREG(info.st_mode):
                entry.size = info.st_size
                entry.mode = 0o755 if info.st_mode & 0o111 else 0o644
                with path.open("rb") as handle:
                    archive.addfile(entry, handle)
            else:
                kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                raise SourceError(
                    f"{path} is {kind}; an artifact holds plain files and directories only: "
                    "replace it with the file it stands for, or move it out of the directory"
                )
    return buffer.getvalue()


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED)
        here = Path(root)
        if here != directory:
            found.append(here)
        found += [here / name for name in sorted(files)]
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def read_manifest(body: bytes, where: str) -> tuple[Descriptor, list[Descriptor], dict[str, str]]:
    """The config, the layers and the annotations of an image manifest."""
    try:
        manifest = json.loads(body)
    except ValueError:
        raise SourceError(f"{where}: the manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise SourceError(f"{where}: not an OCI image manifest (schemaVersion 2)")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise SourceError(f"{where}: the manifest lists no layers")
    annotations = manifest.get("annotations") or {}
    return (
        Descriptor.read(manifest.get("config"), where),
        [Descriptor.read(layer, where) for layer in layers],
        {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {},
    )


def unpack(layer: bytes, target: Path, where: str) -> None:
    """Extract the gzipped tarball ``layer`` into ``target`` (which must not exist yet)."""
    try:
        raw = gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer
    except (OSError, EOFError):
        raise SourceError(f"{where}: the layer is not a valid gzip stream") from None
    if len(raw) > MAX_UNPACKED + 1024 * 1024:
        raise SourceError(f"{where}: the layer unpacks to more than {MAX_UNPACKED // 1024**2} MiB")
    target.mkdir(parents=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            members = archive.getmembers()
            _check_members(members, where)
            archive.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise SourceError(f"{where}: cannot unpack the layer ({error})") from None


def _check_members(members: list[tarfile.TarInfo], where: str) -> None:
    if len(members) > MAX_ENTRIES:
        raise SourceError(f"{where}: the layer holds more than {MAX_ENTRIES} entries; refused")
    total = 0
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise SourceError(f"{where}: the layer holds the path {member.name!r}; refused")
        if not (member.isfile() or member.isdir()):
            raise SourceError(
                f"{where}: the layer holds {member.name!r}, which is not a plain file or "
                "directory (links and devices are refused)"
            )
        total += member.size
        if total > MAX_UNPACKED:
            raise SourceError(
                f"{where}: the layer unpacks to more than {MAX_UNPACKED // 1024**2} MiB; refused"
            )
