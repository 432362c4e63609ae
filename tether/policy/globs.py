"""Path globs as tether.yaml writes them, and their CODEOWNERS spelling.

Globs are matched against paths relative to the repository root, with ``/`` separators, and are
anchored there: ``apps/web/**`` matches everything under ``apps/web``; ``*`` matches within one
path segment, ``?`` one character of it, ``**`` any number of segments (``**/x`` also matches
``x``); a trailing ``/`` means "everything under". Namespace globs use the same ``*``/``?``.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression ``pattern`` stands for."""
    pattern = pattern.strip().lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
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


def codeowners_pattern(pattern: str) -> str:
    """The CODEOWNERS spelling of a tether.yaml glob (anchored with a leading ``/``)."""
    pattern = pattern.strip().lstrip("/")
    if pattern in ("**", "**/*", ""):
        return "*"
    if pattern.endswith("/**"):
        return f"/{pattern[:-2]}"
    return f"/{pattern}"
