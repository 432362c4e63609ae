"""Paths inside a repository as people write them: the one normal form, and what is refused.

A repository path (an App's ``spec.path``, ``tether sync --path``, a glob's subject) is relative
to the repository root and uses ``/``. Its normal form drops empty and ``.`` segments
(``./apps//web/`` is ``apps/web``; the root is ``.``). Refused, because each can make a path
mean something other than what a reviewer reads:

- ``..`` segments (``apps/web/../../infra`` names ``infra``, not something under ``apps/web``);
- absolute paths (``/etc``);
- backslashes (a separator on some systems, a file-name character on others);
- NUL and other control characters (C code stops reading at NUL; terminals act on the rest).
"""

from __future__ import annotations

ROOT = "."


class UnsafePath(ValueError):
    """A repository path that is refused; ``str()`` says why and what to write instead."""


def normal_path(path: str) -> str:
    """``path`` in normal form (``apps/web``, or ``.`` for the root); ``UnsafePath`` if refused."""
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in path):
        raise UnsafePath(
            "it contains a NUL or another control character; write the path with printable "
            "characters only"
        )
    if "\\" in path:
        raise UnsafePath("it contains a backslash; separate directories with '/'")
    if path.startswith("/"):
        raise UnsafePath("it is absolute; write it relative to the repository root")
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise UnsafePath(
            "it has a '..' segment; name the directory from the repository root instead"
        )
    return "/".join(segments) or ROOT


def ancestors(path: str) -> list[str]:
    """``path`` (normal form) and every directory above it, nearest first, without the root:
    ``apps/web/x.yaml`` → ``[apps/web/x.yaml, apps/web, apps]``."""
    if path == ROOT:
        return [ROOT]
    parts = path.split("/")
    return ["/".join(parts[:end]) for end in range(len(parts), 0, -1)]
