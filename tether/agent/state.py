"""What the agent remembers between passes, per source (GitSource, HelmSource) and per App
(rebuilt from the cluster after a restart: nothing here must be durable)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from tether.agent.specs import AppSpec, HelmSourceSpec, OCISourceSpec, SourceSpec
from tether.cluster.client import Resource
from tether.core import ObjectRef, Revision
from tether.source import ChartArtifact, GitHubApp
from tether.source.oci import FetchedArtifact

log = logging.getLogger("tether.agent")


@dataclass
class SourceState:
    spec: SourceSpec
    revision: Revision | None = None
    error: str = ""
    trigger: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    signature: str = ""  # who signed the fetched commit, when the source verifies signatures
    github_app: GitHubApp | None = None  # kept so its token is reused until near expiry
    github_app_version: str = ""  # resourceVersion of the Secret it was built from


ChartWanted = tuple[str, str]
"""A chart name and the version range an App asks of a HelmSource (``*`` for any)."""


@dataclass
class HelmSourceState:
    """A HelmSource's last fetch: for each chart and range its Apps ask for, the package it
    resolved and verified (what those Apps sync, until the next fetch moves it), or why not."""

    spec: HelmSourceSpec
    charts: dict[ChartWanted, ChartArtifact] = field(default_factory=dict)
    chart_errors: dict[ChartWanted, str] = field(default_factory=dict)
    error: str = ""  # the repository itself could not be read
    fetched_at: str = ""
    trigger: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass
class OCISourceState:
    """An OCISource's last good artifact (kept while later fetches fail), or why not."""

    spec: OCISourceSpec
    artifact: FetchedArtifact | None = None
    error: str = ""
    fetched_at: str = ""
    trigger: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass
class AppState:
    spec: AppSpec
    trigger: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    syncing: bool = False
    # managed objects that changed while a sync ran, as last seen: judged once it has ended
    raced: dict[ObjectRef, dict[str, Any] | None] = field(default_factory=dict)
    # objects a failed canary's fast restore wrote ahead of the pass that takes them over
    # (decision 0032): their changes wait, like a sync's, for the end of the next pass to start
    superseded: set[ObjectRef] = field(default_factory=set)
    handled_request: str = ""  # the last `tether reconcile app` request a pass was run for
    settled: str = ""  # revision:generation:request of the last successful pass
    quiet_passes: int = 0  # timer ticks skipped since the last full pass
    failures: int = 0
    ready: bool = False
    healthy: bool = False
    health_checked: bool = False  # a health wait finished since the last successful sync
    unhealthy_checks: int = 0  # health verdicts in a row that were not Healthy (re-check backoff)
    applied_revision: str = ""
    identity: str = ""  # the ServiceAccount (namespace/name) its last pass was applied as
    desired: dict[ObjectRef, tuple[Resource, dict[str, Any]]] = field(default_factory=dict)
    # what each object should keep looking like, in the server's form (drift is judged on it)
    baseline: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    drifted: dict[ObjectRef, list[str]] = field(default_factory=dict)
    drifted_live: dict[ObjectRef, dict[str, Any] | None] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None  # the App's status as this replica last wrote it
    reason: str = ""

    def poke(self, why: str) -> None:
        """Ask for a pass now; ``why`` is logged at debug level (what woke an app, and when)."""
        log.debug("app poked: %s", why, extra={"app": self.spec.key})
        self.trigger.set()


@dataclass
class Fleet:
    """Every source and App this replica works on, by ``namespace/name``."""

    apps: dict[str, AppState] = field(default_factory=dict)
    sources: dict[str, SourceState] = field(default_factory=dict)
    helm_sources: dict[str, HelmSourceState] = field(default_factory=dict)
    oci_sources: dict[str, OCISourceState] = field(default_factory=dict)

    def apps_of(self, source_key: str, kind: str = "GitSource") -> list[AppState]:
        """The Apps that read source ``kind`` ``source_key`` (as their source, or for values)."""
        return [a for a in self.apps.values() if a.spec.uses(kind, source_key)]

    def app_by_inventory(self, inventory_name: str) -> AppState | None:
        """The app whose objects carry ``inventory_name`` in their app label."""
        return self.apps.get(AppSpec.key_of_inventory(inventory_name))

    def clear(self) -> None:
        self.apps.clear()
        self.sources.clear()
        self.helm_sources.clear()
        self.oci_sources.clear()
