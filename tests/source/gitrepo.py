"""Real git repositories for the source tests: an origin to commit to, and a git runner."""

from __future__ import annotations

import subprocess
from pathlib import Path

IDENTITY = ("-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com")


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stdout, stripped; fail the test on a non-zero exit."""
    result = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


class Origin:
    """A normal (non-bare) repository with a ``main`` branch, as a user's working copy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "--quiet", "--initial-branch=main")

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def write(self, files: dict[str, str]) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Write ``files``, commit everything, and return the new commit's SHA."""
        self.write(files)
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", message)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", f"{ref}^{{commit}}")

    def bare_clone(self, path: Path) -> Path:
        git(self.path.parent, "clone", "--quiet", "--bare", str(self.path), str(path))
        return path
