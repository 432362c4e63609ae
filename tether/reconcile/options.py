"""Settings of one sync, grouped in one place instead of long parameter lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.cluster.client import DEFAULT_CONCURRENCY
from tether.core.ignore import IgnoreRule
from tether.core.inventory import DEFAULT_INVENTORY_NAMESPACE
from tether.health import DEFAULT_GRACE
from tether.policy.access import Tenancy
from tether.reconcile.decrypt import KeySources


@dataclass(frozen=True)
class SyncOptions:
    """What a sync of one app may do.

    ``namespace`` is given to namespaced objects that name none. ``timeout`` bounds the wait for
    health after applying (0 means do not wait). ``concurrency`` bounds API requests in flight;
    ``ignore`` lists fields left to other controllers. ``tenancy`` limits what the app may
    create (checked before any dry-run); ``impersonate`` (``namespace/serviceaccount``) makes the
    API server enforce that ServiceAccount's RBAC on every request of the sync. ``health_checks``
    are the App's CEL checks (``spec.health.checks``, see docs/health.md); ``health_grace`` the
    seconds a controller gets to report on an object after its apply.
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
    health_checks: tuple[Mapping[str, Any], ...] = ()
    health_grace: float = DEFAULT_GRACE
