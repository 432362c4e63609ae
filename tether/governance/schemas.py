"""Kubernetes OpenAPI schemas for offline validation, taken from our own control plane.

``update(connection, cache)`` reads ``/openapi/v3`` from a running API server (the dev cluster,
built from the Kubernetes version Tether pins), merges the component schemas of every group
version and stores them in ``<cache>/<gitVersion>/definitions.json`` with a ``meta.json`` saying
where they came from. ``load(cache, version)`` gives the ``SchemaSet`` lint validates with, or
None when nothing is cached for that version. Nothing here is copied from other projects: the
schemas are whatever our own API server serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection
from tether.errors import TetherError
from tether.policy.schema import SchemaSet, index_kinds

DEFINITIONS = "definitions.json"
META = "meta.json"
_GROUP_VERSION_PATH = re.compile(r"api/v1|apis/[^/]+/[^/]+")


class SchemaCacheError(TetherError):
    """The schema cache could not be written or read."""


def cache_dir(cache: Path, version: str) -> Path:
    return cache / version


async def fetch(client: KubeClient) -> tuple[str, dict[str, Any], list[str]]:
    """The server's version, the merged component schemas of its built-in group versions, and
    the group versions read. Groups served by CustomResourceDefinitions are left out: what the
    cache holds is the Kubernetes build itself, not what happens to be installed in it."""
    version_info = await client.request("GET", "/version", what="the API server's version")
    version = str(version_info.get("gitVersion", "")) or "unknown"
    index = await client.request("GET", "/openapi/v3", what="the OpenAPI v3 index")
    crds = await client.request(
        "GET",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        what="the CustomResourceDefinitions",
    )
    custom_groups = {
        str((item.get("spec") or {}).get("group", "")) for item in (crds or {}).get("items", [])
    }
    paths = sorted(
        p
        for p in (index.get("paths") or {})
        if _GROUP_VERSION_PATH.fullmatch(p) and p.split("/")[1] not in custom_groups
    )

    async def one(path: str) -> dict[str, Any]:
        document = await client.request("GET", f"/openapi/v3/{path}", what=f"OpenAPI v3 {path}")
        schemas = ((document or {}).get("components") or {}).get("schemas") or {}
        return dict(schemas)

    definitions: dict[str, Any] = {}
    for schemas in await asyncio.gather(*(one(path) for path in paths)):
        for name, schema in schemas.items():
            definitions.setdefault(name, _without_descriptions(schema))
    return version, definitions, paths


def _without_descriptions(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_descriptions(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [_without_descriptions(item) for item in schema]
    return schema


def store(
    cache: Path, version: str, definitions: dict[str, Any], server: str, paths: list[str]
) -> Path:
    """Write the schemas of ``version`` atomically; the directory they are in."""
    target = cache_dir(cache, version)
    try:
        target.mkdir(parents=True, exist_ok=True)
        meta = {
            "kubernetesVersion": version,
            "server": server,
            "fetchedAt": datetime.now(UTC).isoformat(timespec="seconds"),
            "groupVersions": paths,
            "kinds": len(index_kinds(definitions)),
        }
        for name, data in ((DEFINITIONS, definitions), (META, meta)):
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=target)
            with os.fdopen(handle, "w") as stream:
                json.dump(data, stream, separators=(",", ":"), sort_keys=True)
            os.replace(temporary, target / name)
    except OSError as exc:
        raise SchemaCacheError(f"cannot write schemas to {target}: {exc.strerror or exc}") from exc
    return target


def update(connection: Connection, cache: Path) -> tuple[str, Path, int]:
    """Fetch the schemas from the cluster of ``connection`` and cache them: (version, directory,
    number of kinds)."""

    async def run() -> tuple[str, dict[str, Any], list[str]]:
        async with KubeClient(connection, concurrency=8, timeout=60.0) as client:
            return await fetch(client)

    version, definitions, paths = asyncio.run(run())
    if not definitions:
        raise SchemaCacheError(
            f"the API server at {connection.server} served no OpenAPI v3 schemas"
        )
    directory = store(cache, version, definitions, connection.server, paths)
    return version, directory, len(index_kinds(definitions))


def load(cache: Path, version: str) -> SchemaSet | None:
    """The cached schemas of ``version`` (None when there are none)."""
    path = cache_dir(cache, version) / DEFINITIONS
    if not path.is_file():
        return None
    try:
        definitions = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SchemaCacheError(
            f"the schema cache {path} cannot be read ({exc}); run `tether lint --update-schemas`"
        ) from exc
    return SchemaSet.of(version, definitions)
