"""A confined view of the repository: a copy holding only the paths a render may read.

kustomize reads files by itself: resources, bases, components, patches, generator files,
replacement sources, transformer configurations, OpenAPI schemas, and whatever fields a later
version adds. ``_kustomize.py`` checks every reference it knows, to name the file and line that
breaks the limits, but a tenant's safety must not depend on that list being complete. So when a
render has ``ReadLimits``, kustomize builds this copy instead of the repository: what is not in
the copy cannot be read, whatever a kustomization says (kustomize's own load restrictor stays on
as well).

The copy is made by walking the repository's real directories (``.git`` skipped; directories
the limits cannot reach are not entered) and copying each regular file the limits allow, at the
same path. A symlink is kept as a symlink when its real target lies inside the repository and
inside the limits: it then points at the copy of that target, so kustomize sees the same shape
(and applies its own rules to symlinks as it would in the repository). Any other symlink is
left out, as are FIFOs, sockets and devices. Every symlink in the copy therefore leads to
something in the copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tether.render._tree import Escape, Tree

_SKIPPED_AT_ROOT = (".git",)


@contextmanager
def confined_view(tree: Tree) -> Iterator[Path]:
    """A temporary copy of ``tree`` with only what its limits allow, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="tether-view-") as scratch:
        view = Path(os.path.realpath(scratch)) / "repository"
        view.mkdir()
        _copy_directory(tree, tree.root, view, view)
        yield view


def _copy_directory(tree: Tree, real: Path, destination: Path, view: Path) -> None:
    """Copy what the limits allow of the real directory ``real`` into ``destination``."""
    try:
        entries = sorted(os.scandir(real), key=lambda entry: entry.name)
    except OSError:
        return  # an unreadable directory is reported by the checks, if the render needs it
    for entry in entries:
        if real == tree.root and entry.name in _SKIPPED_AT_ROOT:
            continue
        source = Path(entry.path)
        label = tree.label_of(source)
        if entry.is_symlink():
            _link(tree, source, destination / entry.name, view)
        elif entry.is_dir(follow_symlinks=False):
            if tree.limits is None or tree.limits.may_contain(label):
                (destination / entry.name).mkdir()
                _copy_directory(tree, source, destination / entry.name, view)
        elif entry.is_file(follow_symlinks=False) and tree.allows(label):
            shutil.copyfile(source, destination / entry.name, follow_symlinks=False)


def _link(tree: Tree, link: Path, destination: Path, view: Path) -> None:
    """Recreate symlink ``link`` pointing into the copy, when it and its target are allowed."""
    if not tree.allows(tree.label_of(link)):
        return
    try:
        target = tree.confine(link)
    except Escape:
        return
    if target.exists():
        relative = tree.label_of(target)
        destination.symlink_to(view if relative == "." else view / relative)
