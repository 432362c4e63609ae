"""A confined view of the repository: a copy holding only the paths a render may read.

kustomize reads files by itself: resources, bases, components, patches, generator files,
replacement sources, transformer configurations, OpenAPI schemas, and whatever fields a later
version adds. ``_kustomize.py`` checks every reference it knows, to name the file and line that
breaks the limits, but a tenant's safety must not depend on that list being complete. So when a
render has ``ReadLimits``, kustomize builds this copy instead of the repository: what is not in
the copy cannot be read, whatever a kustomization says (kustomize's own load restrictor stays on
as well).

The copy holds the directories of the kustomizations the checks reached from the one being
built (its own, and those of its resources, bases and components), with everything under them
that the limits allow: kustomize, with its load restrictor on, reads files only within a
kustomization's directory, and reaches other directories only as kustomizations in turn. A
directory kustomize would reach through a field the checks do not know is simply missing from
the copy, and the build fails: that is the safe way to be wrong. Regular files are copied at the
same path (as hard links where the file system allows: kustomize only reads, and a link costs a
quarter of a copy). A symlink is kept when it and its real target are inside the repository and
the limits, pointing at a copy of that target (so kustomize sees the same shape and applies its
own rules to symlinks as it would in the repository); any other is left out, as are ``.git``,
FIFOs, sockets and devices. Every symlink in the copy therefore leads to something in the copy.

Only those directories are copied, not all the paths the limits allow, because copying costs:
about 5 s for a team allowed 20,000 files on the test machine, against nothing for the usual
kustomization of a few dozen (see docs/decisions/0014-confined-renders.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tether.render._tree import Escape, Tree

_SKIPPED_AT_ROOT = (".git",)


@contextmanager
def confined_view(tree: Tree, directories: Iterable[Path]) -> Iterator[Path]:
    """A temporary copy of the real ``directories`` of ``tree`` (and the symlink targets they
    need) with only what the limits allow, at the same paths; removed on exit."""
    with tempfile.TemporaryDirectory(prefix="tether-view-") as scratch:
        view = Path(os.path.realpath(scratch)) / "repository"
        view.mkdir()
        copier = _Copier(tree, view)
        for directory in sorted(directories):
            copier.directory(directory)
        yield view


class _Copier:
    """Copies parts of ``tree`` into ``view``, each real directory at most once."""

    def __init__(self, tree: Tree, view: Path) -> None:
        self.tree = tree
        self.view = view
        self.copied: set[Path] = set()

    def target(self, real: Path) -> Path:
        label = self.tree.label_of(real)
        return self.view if label == "." else self.view / label

    def directory(self, real: Path) -> None:
        """Copy directory ``real`` (a real path inside the tree) and what is under it."""
        if real in self.copied or any(parent in self.copied for parent in real.parents):
            return
        self.target(real).mkdir(parents=True, exist_ok=True)
        self._walk(real)

    def _walk(self, real: Path) -> None:
        self.copied.add(real)
        limits = self.tree.limits
        try:
            entries = sorted(os.scandir(real), key=lambda entry: entry.name)
        except OSError:
            return  # an unreadable directory is reported by the checks, if the render needs it
        for entry in entries:
            if real == self.tree.root and entry.name in _SKIPPED_AT_ROOT:
                continue
            source = Path(entry.path)
            label = self.tree.label_of(source)
            if entry.is_symlink():
                self._link(source)
            elif entry.is_dir(follow_symlinks=False):
                if source not in self.copied and (limits is None or limits.may_contain(label)):
                    self.target(source).mkdir(exist_ok=True)
                    self._walk(source)
            elif entry.is_file(follow_symlinks=False) and self.tree.allows(label):
                self.file(source)

    def file(self, real: Path) -> None:
        """Copy regular file ``real``: a hard link when the file system allows one."""
        destination = self.target(real)
        if destination.exists():
            return
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(real, destination, follow_symlinks=False)
        except OSError:
            shutil.copyfile(real, destination, follow_symlinks=False)

    def _link(self, link: Path) -> None:
        """Recreate symlink ``link`` pointing into the copy, when it and its target are allowed."""
        if not self.tree.allows(self.tree.label_of(link)):
            return
        try:
            real = self.tree.confine(link)
        except Escape:
            return
        if real.is_dir():
            self.directory(real)
        elif real.is_file():
            self.file(real)
        else:
            return
        self.target(link).symlink_to(self.target(real))
