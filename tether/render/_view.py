"""A confined view of the repository: a copy holding only the paths a render may read.

kustomize reads files by itself: resources, bases, components, patches, generator files,
replacement sources, transformer configurations, OpenAPI schemas, and whatever fields a later
version adds. ``_kustomize.py`` checks every reference it knows, to name the file and line that
breaks the limits, but a tenant's safety must not depend on that list being complete. So when a
render has ``ReadLimits``, kustomize builds this copy instead of the repository: what is not in
the copy cannot be read, whatever a kustomization says (kustomize's own load restrictor stays on
as well).

The copy is made by walking the repository (``.git`` skipped) and copying each regular file the
limits allow. Symlinks are resolved while copying: one whose target lies inside the repository
and inside the limits becomes a copy of its target (a file, or a directory copied in turn); any
other is left out. The copy therefore holds no symlink at all. Directories the limits cannot
reach are not walked. FIFOs, sockets and devices are never copied.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tether.render._tree import Escape, Tree, join

_SKIPPED_AT_ROOT = (".git",)


@contextmanager
def confined_view(tree: Tree) -> Iterator[Path]:
    """A temporary copy of ``tree`` with only what its limits allow, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="tether-view-") as scratch:
        view = Path(scratch) / "repository"
        view.mkdir()
        _copy_directory(tree, tree.root, view, ".", frozenset({tree.root}))
        yield view


def _copy_directory(
    tree: Tree, real: Path, destination: Path, label: str, seen: frozenset[Path]
) -> None:
    """Copy what the limits allow of directory ``real`` (shown to kustomize as ``label``)."""
    try:
        names = sorted(os.listdir(real))
    except OSError:
        return  # an unreadable directory is reported by the checks, if the render needs it
    for name in names:
        if label == "." and name in _SKIPPED_AT_ROOT:
            continue
        child_label = join(label, name)
        source = _resolved(tree, real / name)
        if source is None:
            continue
        try:
            mode = source.stat().st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            if source in seen or not _reachable(tree, child_label, source):
                continue
            target = destination / name
            target.mkdir()
            _copy_directory(tree, source, target, child_label, seen | {source})
        elif stat.S_ISREG(mode) and tree.allows(child_label) and tree.allows(tree.label_of(source)):
            shutil.copyfile(source, destination / name, follow_symlinks=False)


def _resolved(tree: Tree, path: Path) -> Path | None:
    """``path`` itself, or the real target of a symlink that stays within the limits."""
    if not path.is_symlink():
        return path
    try:
        return tree.confine(path)
    except Escape:
        return None


def _reachable(tree: Tree, label: str, real: Path) -> bool:
    """Whether anything under directory ``label`` (really ``real``) may be read."""
    if tree.limits is None:
        return True
    return tree.limits.may_contain(label) and tree.limits.may_contain(tree.label_of(real))
