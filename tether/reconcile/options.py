"""Settings of one sync, grouped in one place instead of long parameter lists."""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.cluster.client import DEFAULT_CONCURRENCY
from tether.core.ignore import IgnoreRule
from tether.core.inventory import DEFAULT_INVENTORY_NAMESPACE
from tether.policy.access import Tenancy
from tether.reconcile.decrypt import KeySources


@dataclass(frozen=True)
class SyncOptions:
    """What a sync of one app may do.

    ``namespace`` is given to namespaced objects that name none. ``timeout`` bounds the wait for
    health after applying (0 means do not wait). ``concurrency`` bounds API requests in flight;
    ``ignore`` lists fields left to other controllers. ``tenancy`` limits what the app may
    create (checked before any dry-run); ``impersonate`` (``namespace/serviceaccount``) makes the
    API server enforce that ServiceAccount's RBAC on every request of the sync.
    """

    app: str
    namespace: str = "default"
    prune: bool = False
    allow_empty: bool = False
    dry_run: bool = False
    timeout: float = 300.0
    inventory_namespace: str = DEFAULT_INVENTORY_NAMESPACE
    concurrency: int = DEFAULT_CONCURRENCY
    ignore: tuple[IgnoreRule, ...] = ()
    team: str = ""  # take ``tenancy`` from this team in the repository's tether.yaml
    tenancy: Tenancy | None = None
    impersonate: str = ""
    keys: KeySources = field(default_factory=KeySources)
