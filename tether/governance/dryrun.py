"""``tether lint --cluster``: every object through a server-side dry-run instead of the offline
schemas, so admission webhooks, CRDs installed in the cluster and its exact version all count.

Nothing is written. A namespaced object naming no namespace is tried in its app's first
namespace (``default`` for the platform). An object in a namespace the repository creates but
the cluster does not have yet, or of a kind whose CustomResourceDefinition the repository
defines but the cluster lacks, cannot be dry-run on its own: those become notes, not errors.
"""

from __future__ import annotations

import asyncio
import copy

from tether.cluster.client import ApiError, KubeClient
from tether.cluster.kubeconfig import Connection
from tether.core import Manifest
from tether.errors import ClusterError
from tether.policy.config import RepoConfig
from tether.policy.findings import Finding, Severity
from tether.policy.layout import Unit
from tether.policy.rules import RULES

CONCURRENCY = 8


def check(units: list[Unit], config: RepoConfig, connection: Connection) -> list[Finding]:
    """Dry-run findings for the objects of ``units``."""
    return asyncio.run(_check(units, config, connection))


async def _check(units: list[Unit], config: RepoConfig, connection: Connection) -> list[Finding]:
    namespaces = {m.ref.name for u in units for m in u.manifests if m.is_namespace}
    crd_kinds = {
        (
            str((m.body.get("spec") or {}).get("group", "")),
            str(((m.body.get("spec") or {}).get("names") or {}).get("kind", "")),
        )
        for u in units
        for m in u.manifests
        if m.is_crd
    }
    async with KubeClient(connection, concurrency=CONCURRENCY) as client:
        jobs = [
            _one(client, manifest, _default_namespace(unit, config), namespaces, crd_kinds)
            for unit in units
            for manifest in unit.manifests
        ]
        results = await asyncio.gather(*jobs)
    return [finding for finding in results if finding is not None]


def _default_namespace(unit: Unit, config: RepoConfig) -> str:
    if unit.place.app:
        for namespace in config.app_namespaces(unit.place.app):
            if "*" not in namespace and "?" not in namespace:
                return namespace
    return "default"


async def _one(
    client: KubeClient,
    manifest: Manifest,
    namespace: str,
    namespaces: set[str],
    crd_kinds: set[tuple[str, str]],
) -> Finding | None:
    ref = manifest.ref
    try:
        resource = await client.resource(manifest.api_version, manifest.kind)
    except ClusterError as error:
        if (ref.group, ref.kind) in crd_kinds:
            return _note(manifest, f"{ref}: not dry-run, the cluster lacks its CRD (defined here)")
        return _rejected(manifest, str(error))
    body = copy.deepcopy(manifest.body)
    metadata = body.setdefault("metadata", {})
    if resource.namespaced and not metadata.get("namespace"):
        metadata["namespace"] = namespace
    try:
        await client.apply(resource, body, dry_run=True)
    except ApiError as error:
        target = metadata.get("namespace", "")
        if error.not_found and target in namespaces:
            return _note(
                manifest,
                f"{ref}: not dry-run, namespace {target!r} does not exist in the cluster yet",
            )
        return _rejected(manifest, str(error))
    except ClusterError as error:
        return _rejected(manifest, str(error))
    return None


def _rejected(manifest: Manifest, message: str) -> Finding:
    rule = RULES["dry-run-rejected"]
    return Finding(
        rule.id,
        manifest.source.path,
        message,
        manifest.source.line,
        rule.severity,
        rule.hint,
        subject=str(manifest.ref),
    )


def _note(manifest: Manifest, message: str) -> Finding:
    return Finding(
        "dry-run-rejected",
        manifest.source.path,
        message,
        manifest.source.line,
        Severity.NOTE,
        "apply the namespace or CRD first (a sync does so in its first stage)",
        subject=str(manifest.ref),
    )
