"""Healthy renders in the audit store (SQLite and a real PostgreSQL): what a rollback reads back,
with no Secret value ever written, and databases written before the table existed still open."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tether.audit import AuditStore, RenderRecord
from tether.audit.renders import RENDER_COMMITS_TABLE
from tether.audit.schema import TABLE_NAME
from tether.core import Manifest, ObjectRef, SourceLocation
from tether.core.renderdigest import render_digest

from .records import revision, sync

PASSWORD = "hunter2-never-stored"


def deployment(image: str) -> Manifest:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }
    return Manifest(body, SourceLocation("web/deployment.yaml", 1))


def secret() -> Manifest:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "stringData": {"password": PASSWORD},
    }
    return Manifest(body, SourceLocation("web/secret.yaml", 1))


def render(image: str, commit: str) -> RenderRecord:
    return RenderRecord.of("shop", revision(commit), [deployment(image), secret()])


def test_a_render_round_trips_without_its_secret_values(audit_url: str) -> None:
    record = render("web:1", "a" * 40)
    with AuditStore(audit_url) as store:
        assert store.record_render(record)
        read = store.last_good_render("shop")
    assert read is not None
    assert read.digest == record.digest == render_digest([deployment("web:1"), secret()])
    assert read.revision == revision("a" * 40)
    assert [m.body for m in read.manifests] == [deployment("web:1").body]
    assert str(read.manifests[0].source) == "web/deployment.yaml:1"
    assert read.withheld == (ObjectRef("", "Secret", "shop", "db"),)


def test_the_same_digest_is_recorded_once_until_it_changes(audit_url: str) -> None:
    with AuditStore(audit_url) as store:
        assert store.record_render(render("web:1", "a" * 40))
        assert not store.record_render(render("web:1", "b" * 40))  # a README edit on top
        assert store.record_render(render("web:2", "c" * 40))
        assert store.record_render(render("web:1", "d" * 40))  # reverted: newest again
        commits = [r.revision.commit[0] for r in store.renders("shop")]
        assert commits == ["d", "c", "b"]  # the first one by the newest commit that applied it


def test_a_render_applied_again_is_known_by_its_newest_commit_and_found_by_any(
    audit_url: str,
) -> None:
    with AuditStore(audit_url) as store:
        assert store.record_render(render("web:1", "a" * 40))
        assert not store.record_render(render("web:1", "b" * 40))
        assert not store.record_render(render("web:1", "b" * 40))  # the same pass again
        assert not store.record_render(render("web:1", "c" * 40))
        newest = store.last_good_render("shop")
        assert newest is not None and newest.revision == revision("c" * 40)
        assert [r.revision.commit[0] for r in store.renders("shop")] == ["c"]  # one render
        for commit in ("a", "b", "c"):
            found = store.render_at("shop", commit * 7)
            assert found is not None and found.id == newest.id, commit
            assert found.revision.commit == commit * 40  # known by the commit asked for
        assert store.record_render(render("web:2", "d" * 40))
        back = store.render_at("shop", "bbbbbbb")  # a newer render since: b still finds web:1
        assert back is not None and back.id == newest.id and back.revision == revision("b" * 40)
        assert store.render_at("shop", "e" * 7) is None
        assert store.render_at("other", "a" * 7) is None


def test_last_good_render_skips_quarantined_digests_and_other_apps(audit_url: str) -> None:
    good, bad = render("web:1", "a" * 40), render("web:2", "b" * 40)
    with AuditStore(audit_url) as store:
        store.record_render(good)
        store.record_render(bad)
        store.record_render(RenderRecord.of("other", revision("c" * 40), [deployment("x:9")]))
        assert store.last_good_render("shop") == store.render_at("shop", "b" * 40)
        found = store.last_good_render("shop", excluding=frozenset({bad.digest}))
        assert found is not None and found.revision.commit == "a" * 40
        assert (
            store.last_good_render("shop", excluding=frozenset({bad.digest, good.digest})) is None
        )
        assert store.last_good_render("nobody") is None
        at = store.render_at("shop", "aaaaaaa")
        assert at is not None and at.digest == good.digest
        assert store.render_at("shop", "a%") is None  # a LIKE pattern is not a wildcard here


def test_no_secret_value_reaches_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditStore(str(path)) as store:
        store.record_render(render("web:1", "a" * 40))
    for file in tmp_path.iterdir():
        assert PASSWORD.encode() not in file.read_bytes()


def test_a_database_from_before_the_renders_table_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditStore(str(path)) as store:
        saved = store.record(sync())
    with sqlite3.connect(path) as raw:  # as an older Tether left it: only the sync records
        listed = "SELECT name FROM sqlite_master WHERE type='table'"
        for (table,) in list(raw.execute(listed)):
            if table.startswith("tether_") and table != TABLE_NAME:
                raw.execute(f"DROP TABLE {table}")
        assert {r[0] for r in raw.execute(listed)} == {TABLE_NAME}
    with AuditStore(str(path)) as store:
        assert store.history("shop") == [saved]
        assert store.last_good_render("shop") is None
        assert store.record_render(render("web:1", "a" * 40))
        assert store.last_good_render("shop") is not None


def test_a_database_from_before_render_commits_keeps_its_renders_and_gains_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    with AuditStore(str(path)) as store:
        assert store.record_render(render("web:1", "a" * 40))
    with sqlite3.connect(path) as raw:  # as an older Tether left it: no tether_render_commits
        raw.execute(f"DROP TABLE {RENDER_COMMITS_TABLE}")
    with AuditStore(str(path)) as store:
        kept = store.last_good_render("shop")
        assert kept is not None and kept.revision.commit == "a" * 40
        assert not store.record_render(render("web:1", "b" * 40))
        again = store.last_good_render("shop")
        assert again is not None and again.revision.commit == "b" * 40
        assert again.manifests == kept.manifests
        at = store.render_at("shop", "a" * 40)
        assert at is not None and at.id == kept.id
    with sqlite3.connect(path) as raw:  # one copy of the objects, one small row for the commit
        assert raw.execute("SELECT count(*) FROM tether_renders").fetchone() == (1,)
        assert raw.execute("SELECT count(*) FROM tether_render_commits").fetchone() == (1,)
