"""fetch() against real local repositories: paths, file:// URLs, bare repos, every kind of ref."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.source.gitrepo import Origin, git
from tether.errors import SourceError
from tether.source import Artifact, default_cache_dir, fetch
from tether.source.urls import parse_remote


def tree(root: Path) -> dict[str, str]:
    """Every file and symlink below ``root``: path -> content (``-> target`` for symlinks)."""
    found = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[name] = path.read_text()
    return found


def test_local_path_default_branch(origin: Origin, cache: Path) -> None:
    artifact = fetch(str(origin.path), cache_dir=cache)
    revision = artifact.revision
    assert revision.url == str(origin.path.resolve())
    assert revision.ref == "main"
    assert revision.commit == origin.head()
    assert revision.author == "Ada Lovelace <ada@example.com>"
    assert revision.subject == "add link and exec bit"
    assert tree(artifact.root)["app/deploy.yaml"] == "kind: Deployment\n"


def test_default_branch_follows_the_remote_head(origin: Origin, cache: Path) -> None:
    origin.git("checkout", "--quiet", "-b", "trunk")
    trunk = origin.commit({"trunk.txt": "t\n"}, message="on trunk")
    artifact = fetch(str(origin.path), cache_dir=cache)
    assert (artifact.revision.ref, artifact.revision.commit) == ("trunk", trunk)
    assert fetch(str(origin.path), "HEAD", cache_dir=cache).revision.ref == "HEAD"


def test_detached_head_remote_resolves_to_its_commit(origin: Origin, cache: Path) -> None:
    first = origin.head("HEAD~1")
    origin.git("checkout", "--quiet", "--detach", first)
    revision = fetch(str(origin.path), cache_dir=cache).revision
    assert (revision.ref, revision.commit) == ("HEAD", first)


def test_file_url_and_bare_repository(origin: Origin, cache: Path, tmp_path: Path) -> None:
    bare = origin.bare_clone(tmp_path / "bare.git")
    by_url = fetch(f"file://{bare}", "main", cache_dir=cache)
    by_path = fetch(str(bare), cache_dir=cache)
    assert by_url.revision.url == f"file://{bare}"
    assert by_url.revision.commit == by_path.revision.commit == origin.head()
    assert by_url.root == by_path.root


def test_relative_path(origin: Origin, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(origin.path.parent)
    artifact = fetch("origin", cache_dir=cache)
    assert artifact.revision.url == str(origin.path.resolve())


@pytest.mark.parametrize("kind", ["branch", "tag", "annotated", "full-sha", "short-sha", "refs"])
def test_every_kind_of_ref(origin: Origin, cache: Path, kind: str) -> None:
    old = origin.head("HEAD~1")
    origin.git("branch", "release", old)
    origin.git("tag", "v1.0", old)
    origin.git("tag", "--annotate", "v1.1", "--message", "annotated", old)
    ref = {
        "branch": "release",
        "tag": "v1.0",
        "annotated": "v1.1",
        "full-sha": old,
        "short-sha": old[:7],
        "refs": "refs/tags/v1.1",
    }[kind]
    artifact = fetch(str(origin.path), ref, cache_dir=cache)
    assert artifact.revision.ref == ref
    assert artifact.revision.commit == old
    assert artifact.revision.subject == "first commit"
    assert "app/link.yaml" not in tree(artifact.root)


def test_branch_wins_over_a_tag_of_the_same_name(origin: Origin, cache: Path) -> None:
    origin.git("tag", "main", "HEAD~1")
    assert fetch(str(origin.path), "main", cache_dir=cache).revision.commit == origin.head()
    tagged = fetch(str(origin.path), "refs/tags/main", cache_dir=cache)
    assert tagged.revision.commit == origin.head("HEAD~1")


def test_ref_outside_heads_and_tags(origin: Origin, cache: Path) -> None:
    origin.git("update-ref", "refs/pull/7/head", "HEAD~1")
    artifact = fetch(str(origin.path), "refs/pull/7/head", cache_dir=cache)
    assert artifact.revision.commit == origin.head("HEAD~1")


def test_new_commits_are_seen_on_the_next_fetch(origin: Origin, cache: Path) -> None:
    before = fetch(str(origin.path), "main", cache_dir=cache)
    after_commit = origin.commit({"app/deploy.yaml": "kind: Deployment # v2\n"}, message="v2")
    after = fetch(str(origin.path), "main", cache_dir=cache)
    assert before.revision.commit != after.revision.commit == after_commit
    assert tree(after.root)["app/deploy.yaml"] == "kind: Deployment # v2\n"
    assert tree(before.root)["app/deploy.yaml"] == "kind: Deployment\n"


def test_force_moved_tag_is_followed(origin: Origin, cache: Path) -> None:
    origin.git("tag", "stable", "HEAD~1")
    assert fetch(str(origin.path), "stable", cache_dir=cache).revision.commit == origin.head(
        "HEAD~1"
    )
    origin.git("tag", "--force", "stable", "HEAD")
    assert fetch(str(origin.path), "stable", cache_dir=cache).revision.commit == origin.head()


def test_deleted_branches_and_tags_are_pruned(origin: Origin, cache: Path) -> None:
    origin.git("branch", "feature")
    origin.git("tag", "v0.1")
    fetch(str(origin.path), "feature", cache_dir=cache)
    fetch(str(origin.path), "v0.1", cache_dir=cache)
    origin.git("branch", "--delete", "feature")
    origin.git("tag", "--delete", "v0.1")
    for gone in ("feature", "v0.1"):
        with pytest.raises(SourceError, match=f"ref '{gone}' not found"):
            fetch(str(origin.path), gone, cache_dir=cache)


def test_artifact_is_the_commit_not_the_working_copy(origin: Origin, cache: Path) -> None:
    origin.write({"app/deploy.yaml": "uncommitted edit\n", "untracked.yaml": "new\n"})
    origin.git("add", "untracked.yaml")
    files = tree(fetch(str(origin.path), cache_dir=cache).root)
    assert files["app/deploy.yaml"] == "kind: Deployment\n"
    assert "untracked.yaml" not in files


def test_symlinks_and_file_modes_are_preserved(origin: Origin, cache: Path) -> None:
    origin.commit({"outside": "x\n"}, message="more")
    (origin.path / "escape").symlink_to("/etc/passwd")
    origin.git("add", "escape")
    origin.git("commit", "--quiet", "--message", "absolute symlink")
    root = fetch(str(origin.path), cache_dir=cache).root
    assert (root / "app" / "link.yaml").is_symlink()
    assert os.readlink(root / "app" / "link.yaml") == "deploy.yaml"
    assert os.readlink(root / "escape") == "/etc/passwd"
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "README.md").stat().st_mode) == 0o644
    assert not (root / ".git").exists()


def test_gitattributes_do_not_alter_the_bytes(origin: Origin, cache: Path) -> None:
    origin.commit(
        {
            ".gitattributes": "*.txt text eol=crlf\nsecret.txt export-ignore\nid.txt ident\n",
            "lines.txt": "a\nb\n",
            "secret.txt": "still here\n",
            "id.txt": "$Id$\n",
        }
    )
    files = tree(fetch(str(origin.path), cache_dir=cache).root)
    assert (root_bytes := files["lines.txt"].encode()) == b"a\nb\n", root_bytes
    assert files["secret.txt"] == "still here\n"
    assert files["id.txt"] == "$Id$\n"


def test_submodule_becomes_an_empty_directory(origin: Origin, cache: Path) -> None:
    sub = origin.head()
    origin.git("update-index", "--add", "--cacheinfo", f"160000,{sub},vendor/lib")
    origin.git("commit", "--quiet", "--message", "gitlink")
    root = fetch(str(origin.path), cache_dir=cache).root
    assert (root / "vendor" / "lib").is_dir()
    assert list((root / "vendor" / "lib").iterdir()) == []


def test_the_users_working_copy_is_left_alone(origin: Origin, cache: Path) -> None:
    origin.write({"README.md": "edited, not committed\n", "scratch.txt": "untracked\n"})
    origin.git("checkout", "--quiet", "--detach", "HEAD~1")
    origin.write({"README.md": "edited, not committed\n"})
    status = origin.git("status", "--porcelain")
    head = origin.head()
    refs = origin.git("for-each-ref")
    fetch(str(origin.path), "main", cache_dir=cache)
    fetch(str(origin.path), cache_dir=cache)
    assert origin.git("status", "--porcelain") == status
    assert origin.head() == head
    assert origin.git("for-each-ref") == refs
    assert not (origin.path / ".git" / "FETCH_HEAD").exists()


def test_refetch_reuses_the_artifact_directory(origin: Origin, cache: Path) -> None:
    first = fetch(str(origin.path), "main", cache_dir=cache)
    marker = first.root / "README.md"
    inode = marker.stat().st_ino
    second = fetch(str(origin.path), "main", cache_dir=cache)
    assert second == first
    assert marker.stat().st_ino == inode
    assert [p.name for p in (cache / "artifacts").iterdir()] == [first.revision.commit]


def test_unknown_ref_names_the_url_the_ref_and_what_exists(origin: Origin, cache: Path) -> None:
    origin.git("branch", "dev")
    origin.git("tag", "v1.0")
    with pytest.raises(SourceError) as caught:
        fetch(str(origin.path), "nope", cache_dir=cache)
    message = str(caught.value)
    assert f"ref 'nope' not found in {origin.path.resolve()}" in message
    assert "branches: " in message and "main" in message and "dev" in message
    assert "tags: v1.0" in message


def test_unknown_full_sha_says_fetching_it_failed(origin: Origin, cache: Path) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(SourceError, match=f"ref '{missing}' not found.*fetching it directly"):
        fetch(str(origin.path), missing, cache_dir=cache)


def test_commit_on_no_ref_is_fetched_by_sha(origin: Origin, cache: Path) -> None:
    fetch(str(origin.path), cache_dir=cache)
    dangling = origin.commit({"later.txt": "x\n"}, message="soon unreachable")
    origin.git("reset", "--quiet", "--hard", "HEAD~1")
    artifact = fetch(str(origin.path), dangling, cache_dir=cache)
    assert artifact.revision.subject == "soon unreachable"
    assert tree(artifact.root)["later.txt"] == "x\n"


@pytest.mark.parametrize("ref", ["", "a b", "-main", "main..dev", "x:y", "a~1", "v^{}", "@"])
def test_invalid_refs_are_refused(origin: Origin, cache: Path, ref: str) -> None:
    with pytest.raises(SourceError, match="invalid ref"):
        fetch(str(origin.path), ref, cache_dir=cache)


def test_empty_repository_has_no_default_branch(tmp_path: Path, cache: Path) -> None:
    empty = Origin(tmp_path / "empty")
    with pytest.raises(SourceError, match="has no default branch"):
        fetch(str(empty.path), cache_dir=cache)
    with pytest.raises(SourceError, match="branches: none; tags: none"):
        fetch(str(empty.path), "main", cache_dir=cache)


def test_missing_local_path(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot reach .*nowhere \(ref main\)"):
        fetch(str(tmp_path / "nowhere"), "main", cache_dir=cache)
    assert not list((cache / "repos").glob("*.git"))


def test_concurrent_fetches_of_one_url(origin: Origin, cache: Path) -> None:
    results: list[Artifact] = []
    errors: list[BaseException] = []

    def run(ref: str | None) -> None:
        try:
            results.append(fetch(str(origin.path), ref, cache_dir=cache))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(ref,)) for ref in ("main", None, "main", None)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {artifact.revision.commit for artifact in results} == {origin.head()}
    assert len({artifact.root for artifact in results}) == 1
    assert not list((cache / "artifacts").glob(".tmp-*"))


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TETHER_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "git"
    monkeypatch.delenv("TETHER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "tether" / "git"


def test_fetch_uses_the_default_cache_dir(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_CACHE_DIR", str(tmp_path / "c"))
    artifact = fetch(str(origin.path))
    assert artifact.root.is_relative_to(tmp_path / "c" / "git" / "artifacts")


def test_mirror_holds_no_credentials_and_names_its_source(origin: Origin, cache: Path) -> None:
    fetch(str(origin.path), cache_dir=cache)
    (mirror,) = (cache / "repos").glob("*.git")
    assert git(mirror, "config", "--list", "--local").count("url") == 0
    assert str(origin.path.resolve()) in (mirror / "description").read_text()


def test_concurrent_fetches_from_two_processes(origin: Origin, cache: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from tether.source import fetch; "
        "print(fetch(sys.argv[1], cache_dir=Path(sys.argv[2])).revision.commit)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(origin.path), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {origin.head()}
    git(next((cache / "repos").glob("*.git")), "fsck", "--no-progress")


def test_a_held_lock_times_out_with_a_clear_message(origin: Origin, cache: Path) -> None:
    name = parse_remote(str(origin.path)).cache_name
    lock = cache / "repos" / name.replace(".git", ".lock")
    lock.parent.mkdir(parents=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(SourceError, match=r"timed out fetching .*another fetch held"):
            fetch(str(origin.path), "main", cache_dir=cache, timeout=0.2)
    assert fetch(str(origin.path), "main", cache_dir=cache).revision.commit == origin.head()


def test_non_ascii_names_authors_and_subjects(origin: Origin, cache: Path) -> None:
    origin.write({"café/ünïcode.yaml": "ok\n"})
    origin.git("add", "--all")
    git(
        origin.path,
        "-c",
        "user.name=Zoë Brontë",
        "commit",
        "--quiet",
        "--message",
        "Ajouter les données ✓",
    )
    artifact = fetch(str(origin.path), cache_dir=cache)
    assert artifact.revision.author == "Zoë Brontë <ada@example.com>"
    assert artifact.revision.subject == "Ajouter les données ✓"
    assert (artifact.root / "café" / "ünïcode.yaml").read_text() == "ok\n"
