"""The quarantine gate of every pass, on a real audit store: a quarantined head is replaced by
the last good render, lifted once the head renders something else or a person retries it, and
each lift is audited with who and why.

The host here is the smallest ``RollbackHost`` (entries in a list, no cluster): the gate
itself talks to the audit store only; the agent's host is exercised by the agent tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether.audit import AuditStore, RenderRecord
from tether.core import Manifest, Revision
from tether.core.renderdigest import render_digest
from tether.delivery.quarantine import QuarantineEntry
from tether.delivery.revert import ForgeTarget
from tether.delivery.rollback import Applied, Retry, RollbackError, gate
from tether.reconcile.run import SyncReport

APP = "shop/web"


def config(value: str) -> Manifest:
    return Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"},
                     "data": {"v": value}})  # fmt: skip


def revision(commit: str) -> Revision:
    return Revision("https://git.example/shop.git", "main", commit * 40)


class ListHost:
    """Entries kept in a list; the audit store is real."""

    def __init__(self, audit: AuditStore) -> None:
        self._audit = audit
        self.kept: list[QuarantineEntry] = []
        self.locks: dict[str, asyncio.Lock] = {}

    @property
    def audit(self) -> AuditStore:
        return self._audit

    def audit_name(self, app_key: str) -> str:
        return app_key.replace("/", ".")

    async def restore(self, app_key: str, render: RenderRecord, actor: str) -> SyncReport:
        raise AssertionError("the gate never restores")

    async def entries(self, app_key: str) -> list[QuarantineEntry]:
        return list(self.kept)

    async def save(self, app_key: str, entries: list[QuarantineEntry]) -> None:
        self.kept = list(entries)

    async def applied(self, app_key: str) -> Applied | None:
        return None

    async def forge(self, app_key: str) -> ForgeTarget | None:
        return None

    def forge_lock(self, app_key: str) -> asyncio.Lock:
        return self.locks.setdefault(app_key, asyncio.Lock())


@pytest.fixture
def host(tmp_path: Path) -> ListHost:
    store = AuditStore(str(tmp_path / "audit.db"))
    store.record_render(RenderRecord.of("shop.web", revision("a"), [config("v1")]))
    return ListHost(store)


def quarantined(host: ListHost, value: str) -> QuarantineEntry:
    entry = QuarantineEntry("b" * 40, render_digest([config(value)]), "errors", "t", "alice")
    host.kept = [entry]
    return entry


def lifts(host: ListHost) -> list[tuple[str, str]]:
    rows = host.audit.delivery_history("shop.web")
    return [(r.actor, r.data["reason"]) for r in rows if r.data["decision"] == "quarantine-lifted"]


def test_a_quarantined_head_gets_the_last_good_render(host: ListHost) -> None:
    entry = quarantined(host, "v2")
    outcome = asyncio.run(gate(host, APP, revision("c"), [config("v2")], "agent/a"))
    assert outcome.held == entry and not outcome.lifted
    assert [m.body for m in outcome.manifests] == [config("v1").body]
    assert host.kept == [entry] and lifts(host) == []


def test_another_digest_at_the_head_lifts_it(host: ListHost) -> None:
    entry = quarantined(host, "v2")
    outcome = asyncio.run(gate(host, APP, revision("d"), [config("v3")], "agent/a"))
    assert outcome.held is None and outcome.lifted == [entry]
    assert [m.body for m in outcome.manifests] == [config("v3").body]
    assert host.kept == []
    [(actor, why)] = lifts(host)
    assert actor == "agent/a" and "the revert merged or a fix landed" in why


def test_a_persons_retry_lifts_the_heads_own_entry(host: ListHost) -> None:
    quarantined(host, "v2")
    retry = Retry("bob", "the metrics backend was down")
    outcome = asyncio.run(gate(host, APP, revision("b"), [config("v2")], "agent/a", retry))
    assert outcome.held is None
    assert [m.body for m in outcome.manifests] == [config("v2").body]
    assert lifts(host) == [("bob", "retried by bob: the metrics backend was down")]


def test_nothing_good_to_apply_instead_applies_nothing(tmp_path: Path) -> None:
    host = ListHost(AuditStore(str(tmp_path / "empty.db")))
    quarantined(host, "v2")
    with pytest.raises(RollbackError, match="no healthy render is recorded"):
        asyncio.run(gate(host, APP, revision("b"), [config("v2")], "agent/a"))
