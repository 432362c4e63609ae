"""Fixtures for the source tests: a hermetic git configuration, an origin repo, a cache dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hermetic import hermetic_git, machine_cache_dir_ignored  # noqa: F401  (fixtures)
from tests.source.gitrepo import Origin


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
