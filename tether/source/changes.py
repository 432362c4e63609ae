"""What changed in a local work tree since a ref, and which files a repository holds.

    changed_files(repo, since) -> [(status, path, old_path)]   since the merge base with ``since``
    repository_files(repo) -> [path] | None                     tracked + untracked, not ignored

``changed_files`` compares the merge base of ``since`` and HEAD with the work tree (committed,
staged, unstaged and untracked-but-not-ignored changes), so on a branch it shows the branch's own
changes even when ``since`` (``origin/main``) has moved on. Renames are detected (status ``R``
with the old path). Failures raise ``SourceError`` naming the repository and the ref.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tether.errors import SourceError
from tether.source.git import isolated_environment, summarise

_TIMEOUT = 60.0


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**isolated_environment(), "GIT_OPTIONAL_LOCKS": "0"}
    try:
        return subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise SourceError(
            "the git executable was not found; install git and make sure it is on PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"git {args[0]} in {repo} did not finish within {_TIMEOUT:g}s") from None


def _top_level(repo: Path) -> Path | None:
    if not repo.is_dir():
        return None
    result = _git(repo, "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        return None
    return Path(result.stdout.decode().strip())


def _prefix(repo: Path, top: Path) -> str:
    """``repo`` relative to the work tree's top (``""`` when it is the top)."""
    prefix = repo.resolve().relative_to(top.resolve()).as_posix()
    return "" if prefix == "." else prefix


def _strip(path: str, prefix: str) -> str | None:
    """``path`` (relative to the top) relative to ``prefix``; None when outside it."""
    if not prefix:
        return path
    return path[len(prefix) + 1 :] if path.startswith(prefix + "/") else None


def repository_files(repo: Path) -> list[str] | None:
    """Every file of ``repo`` git would commit (tracked, and untracked but not ignored), relative
    to ``repo``; None when ``repo`` is not inside a git work tree."""
    top = _top_level(repo)
    if top is None:
        return None
    result = _git(
        repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--full-name"
    )
    if result.returncode != 0:
        raise SourceError(f"cannot list the files of {repo}: {summarise(result.stderr.decode())}")
    prefix = _prefix(repo, top)
    paths = (_strip(p, prefix) for p in result.stdout.decode("utf-8", "replace").split("\0") if p)
    return sorted({p for p in paths if p and (repo / p).is_file()})


def changed_files(repo: Path, since: str) -> list[tuple[str, str, str]]:
    """``(status, path, old_path)`` of every file changed since the merge base of ``since`` and
    HEAD, up to the work tree; paths relative to ``repo``."""
    top = _top_level(repo)
    if top is None:
        raise SourceError(f"{repo} is not a git work tree, so --changed-since cannot be used")
    verify = _git(repo, "rev-parse", "--verify", "--quiet", f"{since}^{{commit}}")
    if verify.returncode != 0:
        raise SourceError(
            f"{repo}: unknown ref {since!r}; name a branch, tag or commit that exists locally "
            "(in CI, fetch it first: git fetch origin main)"
        )
    diff = _git(repo, "diff", "--name-status", "-z", "-M", "--no-ext-diff", "--merge-base", since)
    if diff.returncode != 0:
        raise SourceError(
            f"{repo}: cannot diff against {since!r}: {summarise(diff.stderr.decode())}"
        )
    fields = diff.stdout.decode("utf-8", "replace").split("\0")
    changes: list[tuple[str, str, str]] = []
    index = 0
    while index < len(fields) and fields[index]:
        status = fields[index][0]
        if status in ("R", "C"):
            old, new = fields[index + 1], fields[index + 2]
            changes.append((status, new, old))
            index += 3
        else:
            changes.append((status, fields[index + 1], ""))
            index += 2
    untracked = _git(repo, "ls-files", "-z", "--others", "--exclude-standard", "--full-name")
    if untracked.returncode == 0:
        for path in untracked.stdout.decode("utf-8", "replace").split("\0"):
            if path:
                changes.append(("A", path, ""))
    prefix = _prefix(repo, top)
    inside: set[tuple[str, str, str]] = set()
    for status, path, old_path in changes:
        relative = _strip(path, prefix)
        if relative is not None:
            old_relative = _strip(old_path, prefix) if old_path else None
            inside.add((status, relative, old_relative or ""))
    return sorted(inside, key=lambda change: change[1])
