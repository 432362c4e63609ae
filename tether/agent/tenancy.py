"""Who an App is applied as, and what it may deploy: its Project's ServiceAccount and limits, or,
for an App outside any Project, the namespace's default ServiceAccount and its own namespace only.

Every request that dry-runs, applies, prunes or reads the health of an App's objects impersonates
that ServiceAccount, so the API server's RBAC decides as well as Tether's check; the agent never
applies anything as itself. See docs/tenancy.md and docs/decisions/0012.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tether.agent import crds
from tether.agent.secretdata import SECRETS_ROLE
from tether.agent.settings import AgentSettings
from tether.agent.specs import AppSpec
from tether.cluster.client import ApiError, KubeClient
from tether.errors import TenancyViolation
from tether.policy.access import Tenancy
from tether.reconcile.options import SyncOptions

_FORBIDDEN = 403


class IdentityMissing(TenancyViolation):
    """The ServiceAccount an App is applied as does not exist; nothing was applied."""


@dataclass(frozen=True)
class Identity:
    """The ServiceAccount an App is applied as, and why it is that one."""

    namespace: str
    name: str
    chosen_by: str  # "Project team-a/web" or "--default-service-account"

    @property
    def key(self) -> str:
        """``namespace/name``, as ``SyncOptions.impersonate`` takes it."""
        return f"{self.namespace}/{self.name}"


def own_namespace(namespace: str) -> Tenancy:
    """The limits of an App outside any Project: namespaced objects in its own namespace."""
    return Tenancy(name=f"{namespace} (an App without a Project)", namespaces=(namespace,))


async def with_identity(
    client: KubeClient, spec: AppSpec, options: SyncOptions, settings: AgentSettings
) -> SyncOptions:
    """``options`` with the App's identity to impersonate and, unless the check is off, its
    limits. Raises ``TenancyViolation`` when its Project is missing and ``IdentityMissing`` when
    the ServiceAccount is."""
    if spec.project:
        tenancy, account = await _project(client, spec)
        identity = Identity(
            spec.namespace,
            account or settings.default_service_account,
            f"Project {spec.project}" if account else "--default-service-account",
        )
    else:
        tenancy = own_namespace(spec.namespace)
        identity = Identity(
            spec.namespace, settings.default_service_account, "--default-service-account"
        )
    await _must_exist(client, spec, identity)
    return replace(
        options,
        tenancy=tenancy if settings.tenancy_check else None,
        impersonate=identity.key,
    )


async def _project(client: KubeClient, spec: AppSpec) -> tuple[Tenancy, str]:
    """The limits the App's Project sets, and the ServiceAccount it names ("" for none)."""
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
    return tenancy, str(body.get("serviceAccountName") or "")


async def _must_exist(client: KubeClient, spec: AppSpec, identity: Identity) -> None:
    """Refuse, with what to do, when the ServiceAccount is missing. When the agent may not read
    it (a name the install does not list), the impersonated requests will say why instead."""
    resource = await client.resource("v1", "ServiceAccount")
    try:
        found = await client.get(resource, identity.namespace, identity.name)
    except ApiError as error:
        if error.status == _FORBIDDEN:
            return
        raise
    if found is None:
        raise IdentityMissing(
            f"App {spec.key}: nothing was applied: it is applied as ServiceAccount "
            f"{identity.key} (chosen by {identity.chosen_by}), which does not exist. Create it "
            "and bind it a Role for what the App deploys, e.g. `kubectl create serviceaccount "
            f"{identity.name} -n {identity.namespace} && kubectl create rolebinding "
            f"{identity.name} --clusterrole=edit --serviceaccount={identity.key.replace('/', ':')}"
            f" -n {identity.namespace}` (see docs/tenancy.md)"
        )


def refusal_hint(error: str, service_account: str) -> str:
    """What to do about an API server refusal in the error of a failed sync (which names the
    request and the user refused); "" when there is none, or nothing to add."""
    if "(403 " not in error or not service_account:
        return ""
    if "cannot impersonate" in error:
        return (
            f"the agent may not impersonate ServiceAccount {service_account}: list its name in "
            "`tether install --deployer-name` (see docs/tenancy.md)"
        )
    namespace, _, name = service_account.partition("/")
    if f'"system:serviceaccount:{namespace}:{name}"' in error:
        return (
            f"the App is applied as ServiceAccount {service_account}, which lacks the rights "
            "above: bind it a Role (or, for other namespaces and cluster-scoped objects, a "
            "Project's ServiceAccount a ClusterRole) that allows them (see docs/tenancy.md)"
        )
    if 'cannot get resource "secrets"' in error:
        return (
            f"the agent reads the App's decryption keys as itself: bind it ClusterRole "
            f"{SECRETS_ROLE} in namespace {namespace} (see docs/tenancy.md)"
        )
    return ""
