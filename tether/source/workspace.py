"""Creating and committing to a local Git repository: what the demo and tests use to play the
part of a person pushing to the GitOps repository. (Fetching sources is ``git.py``'s job.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tether.errors import SourceError

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Tether Demo",
    "GIT_AUTHOR_EMAIL": "demo@tether.invalid",
    "GIT_COMMITTER_NAME": "Tether Demo",
    "GIT_COMMITTER_EMAIL": "demo@tether.invalid",
}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **_IDENTITY, "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SourceError(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout.strip()


def init_repository(repo: Path, branch: str = "main") -> None:
    repo.mkdir(parents=True, exist_ok=True)
    _git(repo, "init", "-q", "-b", branch)


def commit_all(repo: Path, message: str) -> str:
    """Stage everything in ``repo`` and commit it; the new commit's id."""
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return _git(repo, "rev-parse", "HEAD")
