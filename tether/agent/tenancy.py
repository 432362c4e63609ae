"""An App's Project turned into sync options: tenancy rules that Tether checks, and
impersonation of the Project's ServiceAccount so that the API server enforces RBAC as well."""

from __future__ import annotations

from dataclasses import replace

from tether.agent import crds
from tether.agent.specs import AppSpec
from tether.cluster.client import KubeClient
from tether.errors import TenancyViolation
from tether.policy.access import Tenancy
from tether.reconcile.options import SyncOptions


async def limited_by_project(
    client: KubeClient, spec: AppSpec, options: SyncOptions
) -> SyncOptions:
    """``options`` with the App's Project applied (unchanged for an App without one)."""
    if not spec.project:
        return options
    namespace, _, name = spec.project.partition("/")
    project = await client.get(await client.resource(crds.API_VERSION, "Project"), namespace, name)
    if project is None:
        raise TenancyViolation(
            f"App {spec.key}: Project {spec.project} not found; nothing was applied"
        )
    body = project.get("spec") or {}
    kinds = body.get("kinds") or {}
    tenancy = Tenancy(
        name=f"project {name}",
        source_paths=tuple(body.get("sourcePaths") or ()),
        namespaces=tuple(body.get("destinations") or ()),
        allow_kinds=tuple(kinds.get("allow") or ()),
        deny_kinds=tuple(kinds.get("deny") or ()),
        cluster_scoped=bool(body.get("clusterScoped", False)),
    )
    account = body.get("serviceAccountName")
    return replace(
        options, tenancy=tenancy, impersonate=f"{namespace}/{account}" if account else ""
    )
