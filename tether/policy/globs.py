"""Path globs, the one place that decides what they mean, and their CODEOWNERS spelling.

Used by tether.yaml (``teams[].paths``, naming rules, the allowlist), by team and Project limits
at sync time (``access.py``) and, through them, by what a render may read. Globs are matched
against paths relative to the repository root in normal form (``tether.core.repopath``: ``/``
separators, no ``.`` or ``..``), and are anchored there:

- ``*`` matches within one path segment (never ``/``), ``?`` one character of it;
- ``**`` matches any number of segments, none included: ``**/x`` matches ``x``, and
  ``apps/web/**`` matches ``apps/web`` itself as well as everything under it;
- a trailing ``/`` means the same as ``/**``;
- anything else is literal (``[`` included).

``covers`` is the rule for limits: a path is covered when it, or a directory above it, matches
(allowing a directory allows what is in it). Namespace globs use the same ``*``/``?``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from tether.core.repopath import ancestors


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression ``pattern`` stands for."""
    pattern = pattern.strip().lstrip("/")
    while pattern.startswith("./"):
        pattern = pattern[2:].lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.endswith("/**") and i == len(pattern) - 3:
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` (relative, ``/``-separated) matches the glob ``pattern``."""
    return compile_glob(pattern).fullmatch(path.strip("/")) is not None


def covers(patterns: Iterable[str], path: str) -> bool:
    """Whether ``path`` (normal form) or a directory above it matches one of ``patterns``."""
    candidates = ancestors(path)
    return any(matches(pattern, candidate) for pattern in patterns for candidate in candidates)


def may_match_under(pattern: str, directory: str) -> bool:
    """Whether ``directory`` (normal form) or something under it could match ``pattern``: False
    only when no path below ``directory`` can (a walk may then skip the directory)."""
    pattern_segments = [s for s in pattern.strip().strip("/").split("/") if s not in ("", ".")]
    directory_segments = [] if directory == "." else directory.split("/")
    for glob_segment, segment in zip(pattern_segments, directory_segments, strict=False):
        if "**" in glob_segment:
            return True
        if compile_glob(glob_segment).fullmatch(segment) is None:
            return False
    return True


def codeowners_pattern(pattern: str) -> str:
    """The CODEOWNERS spelling of a tether.yaml glob (anchored with a leading ``/``)."""
    pattern = pattern.strip().lstrip("/")
    if pattern in ("**", "**/*", ""):
        return "*"
    if pattern.endswith("/**"):
        return f"/{pattern[:-2]}"
    return f"/{pattern}"
