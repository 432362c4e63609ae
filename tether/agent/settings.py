"""How one agent replica runs (one dataclass of settings), and which apps belong to its shard."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SERVICE_ACCOUNT = "tether-deployer"


@dataclass(frozen=True)
class AgentSettings:
    """How one agent replica runs."""

    identity: str
    namespace: str = ""  # watch Apps and GitSources here only; "" means every namespace
    lease_namespace: str = "tether-system"
    shard: int = 0
    shards: int = 1
    max_concurrent: int = 4
    kustomize: Path | None = None
    helm: Path | None = None  # None: an App with spec.chart fails its sync, saying so
    audit_url: str | None = None
    alert_queue: int = 1000  # alerts waiting for delivery; more are dropped and counted
    # GitSources (tether.agent.sources, docs/sources.md "In the agent"):
    allow_local_sources: bool = False  # local paths and file:// URLs (single-tenant installs)
    loopback_http_credentials: bool = False  # credentials over plain http to loopback (tests)
    fetch_timeout: float = 120.0  # seconds one fetch may take, git processes killed after
    fetches_per_namespace: int = 2  # fetches of one namespace running at once
    # The ServiceAccount, in the App's own namespace, that an App without a Project is applied
    # as (and a Project that names none). See docs/tenancy.md.
    default_service_account: str = DEFAULT_SERVICE_ACCOUNT
    # Tether's own tenancy check (Project limits; an App without a Project stays in its
    # namespace). No flag turns it off: only a test does, to show that the API server's RBAC
    # alone refuses the same escapes.
    tenancy_check: bool = True
    # Tests only (a hidden flag): a rollback a failed canary asks for stays recorded in
    # ``status.pendingRollback`` and this replica never runs it, so a test can kill the agent
    # between the abort and the rollback and show that another replica runs it.
    test_hold_rollbacks: bool = False
    # Tests only (a hidden flag): the agent kills itself (SIGKILL) right after a failed
    # analysis' fast restore of stable, before the abort is recorded (decision 0032).
    test_crash_after_fast_restore: bool = False

    def owns(self, app_key: str) -> bool:
        """True when the app ``namespace/name`` belongs to this replica's shard."""
        return in_shard(app_key, self.shard, self.shards)


def in_shard(key: str, shard: int, shards: int) -> bool:
    """Stable assignment of an app (``namespace/name``) to one of ``shards`` replicas."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % shards == shard
