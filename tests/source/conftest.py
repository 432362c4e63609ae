"""Fixtures for the source tests: a hermetic git configuration, an origin repo, a cache dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.source.gitrepo import Origin


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's git configuration (helpers, rewrites, identity) out of the tests."""
    empty = tmp_path_factory.getbasetemp() / "empty-gitconfig"
    empty.touch()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_SSH", "GIT_SSH_COMMAND", "TETHER_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    """A working copy with two files, a symlink and an executable, committed on ``main``."""
    repo = Origin(tmp_path / "origin")
    repo.commit(
        {"app/deploy.yaml": "kind: Deployment\n", "README.md": "hello\n", "run.sh": "#!/bin/sh\n"},
        message="first commit",
    )
    (repo.path / "run.sh").chmod(0o755)
    (repo.path / "app" / "link.yaml").symlink_to("deploy.yaml")
    repo.git("add", "--all")
    repo.git("commit", "--quiet", "--message", "add link and exec bit")
    return repo


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"
