"""The quarantine's pure parts: entries in status, lifting, the substitution a held pass applies,
the revert's branch, body and files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tether.audit import RenderRecord
from tether.core import Manifest, Revision
from tether.delivery import quarantine
from tether.delivery.quarantine import PullRequestRef, QuarantineEntry
from tether.delivery.revert import commit_status, pull_request_body, revert_branch
from tether.delivery.rollback import substituted
from tether.forge import CommitState
from tether.source.revert import restoring_files


def entry(digest: str = "sha256:bad", **overrides: Any) -> QuarantineEntry:
    fields: dict[str, Any] = {
        "revision": "b" * 40,
        "render_digest": digest,
        "reason": "error rate 12% > 5%",
        "since": "2026-11-27T22:00:00Z",
        "by": "alice",
        "stable_revision": "a" * 40,
        "evidence": "error-rate: 0.12, 0.14, 0.13 (limit 0.05)",
    }
    return QuarantineEntry(**{**fields, **overrides})


def config(name: str, value: str) -> Manifest:
    return Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                     "data": {"v": value}})  # fmt: skip


def secret(value: str) -> Manifest:
    return Manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                     "stringData": {"password": value}})  # fmt: skip


def test_entries_round_trip_through_status() -> None:
    entries = [entry(), entry("sha256:other", pull_request=PullRequestRef("http://x/pulls/4", 4),
                              pull_request_pending=False, commit_status_set=True)]  # fmt: skip
    status = {"quarantine": quarantine.to_status(entries)}
    assert quarantine.of_status(status) == entries
    assert status["quarantine"][0]["pullRequest"] is None
    assert status["quarantine"][1]["pullRequest"] == {"url": "http://x/pulls/4", "number": 4}
    assert quarantine.of_status(None) == [] and quarantine.of_status({}) == []


def test_a_new_entry_needs_the_forge_until_both_are_done() -> None:
    assert entry().needs_forge
    assert entry(pull_request_pending=False).needs_forge
    assert not entry(pull_request_pending=False, commit_status_set=True).needs_forge


def test_the_first_decision_on_a_digest_stands() -> None:
    first = entry(by="alice")
    entries = quarantine.added([first], entry(by="agent/a"))
    assert entries == [first]
    assert quarantine.added([], entry(evidence="x" * 10_000))[0].evidence == "x" * 4000


def test_entries_lift_when_the_head_renders_another_digest() -> None:
    one, two = entry("sha256:one"), entry("sha256:two")
    assert quarantine.lifted_by([one, two], "sha256:two") == ([two], [one])
    assert quarantine.lifted_by([one, two], "sha256:fixed") == ([], [one, two])
    assert quarantine.lifted_by([one], "sha256:one") == ([one], [])


def test_a_held_pass_applies_stable_objects_and_the_heads_secrets() -> None:
    stable = RenderRecord.of("shop/web", Revision("u", "main", "a" * 40),
                             [config("web", "v1"), secret("old")])  # fmt: skip
    head = [config("web", "v2"), config("added", "x"), secret("new")]
    applied = substituted(stable, head)
    assert [m.body for m in applied] == [config("web", "v1").body, secret("new").body]


def test_the_revert_branch_is_one_per_app_and_commit() -> None:
    assert revert_branch("shop/web", entry()) == f"tether/revert/shop-web/{'b' * 12}"
    assert revert_branch("shop/web", entry(revision="c" * 40)) != revert_branch("shop/web", entry())


def test_the_pull_request_body_carries_the_evidence_and_who_decided() -> None:
    body = pull_request_body("shop/web", entry())
    for expected in ("shop/web", "b" * 12, "a" * 12, "alice", "error rate 12% > 5%",
                     "error-rate: 0.12, 0.14, 0.13 (limit 0.05)"):  # fmt: skip
        assert expected in body
    status = commit_status("shop/web", entry())
    assert status.state is CommitState.FAILURE and status.context == "tether/delivery"
    assert "error rate 12%" in status.description


def test_restoring_files_puts_only_the_apps_path_back(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    for root, files in {
        good: {"apps/web/config.yaml": "v1", "apps/web/old.yaml": "gone later", "apps/db/a": "1"},
        bad: {"apps/web/config.yaml": "v2", "apps/web/extra.yaml": "new", "apps/db/a": "2",
              "apps/web/same.yaml": "s"},
    }.items():  # fmt: skip
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
    (good / "apps/web/same.yaml").write_text("s")
    assert restoring_files(good, bad, "apps/web") == [
        ("apps/web/config.yaml", b"v1"),
        ("apps/web/extra.yaml", None),
        ("apps/web/old.yaml", b"gone later"),
    ]
    assert ("apps/db/a", b"1") in restoring_files(good, bad, ".")
    assert restoring_files(good, bad, "apps/none") == []
