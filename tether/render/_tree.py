"""The repository tree being rendered: every path confined to it, and the plain-directory walk.

Nothing outside the tree may be read: not through ``..``, not through an absolute path, not
through a symlink (to a file or a directory) whose target lies outside. Symlinks whose target
stays inside the tree are followed. With ``ReadLimits`` (a team's source paths), the same holds
for every path outside those limits: a symlink or a kustomize reference is judged by where it
really points, not by where it sits.

The walk visits a directory's entries sorted by name, skips hidden ones (``.git``, ``.github``,
``.env.yaml`` …) and files without a manifest suffix, and hands back a directory holding a
kustomization as one unit instead of descending into it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tether.core.repopath import UnsafePath, normal_path
from tether.errors import RenderError
from tether.render._manifests import JSON_SUFFIXES, YAML_SUFFIXES
from tether.render._problems import Problems
from tether.render._settings import ReadLimits

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = YAML_SUFFIXES + JSON_SUFFIXES


def kustomization_in(directory: Path) -> Path | None:
    """The kustomization file of ``directory``, if it has one."""
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Entry:
    """One unit of a render: a manifest file, or a directory built with kustomize.

    ``real`` is the symlink-free path; ``label`` the path relative to the root as the user wrote
    it (through symlinks), used in every message and ``SourceLocation``.
    """

    real: Path
    label: str
    kustomization: Path | None = None


class Escape(Exception):
    """A path that leaves the tree, or the read limits; ``str()`` is where it points.

    ``limits`` is empty when the path leaves the repository, else the limits it breaks.
    """

    def __init__(self, target: str, limits: str = "") -> None:
        super().__init__(target)
        self.target = target
        self.limits = limits

    def where(self) -> str:
        """``outside the repository (to /x)`` or ``to infra/x, outside the paths team …``."""
        if not self.limits:
            return f"outside the repository (to {self.target})"
        return f"to {self.target}, outside {self.limits}"

    def advice(self) -> str:
        if not self.limits:
            return "only files inside the repository can be rendered: copy the file into it"
        return (
            "a render reads only those paths: move what it needs there, or have the paths "
            "added to the limits"
        )


def join(label: str, name: str) -> str:
    return name if label in ("", ".") else f"{label}/{name}"


@dataclass(frozen=True)
class Tree:
    """A read-only repository tree; ``root`` is its real (symlink-free) absolute path."""

    root: Path
    limits: ReadLimits | None = None

    @classmethod
    def open(cls, root: Path, limits: ReadLimits | None = None) -> Tree:
        try:
            real = Path(root).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise RenderError(f"repository tree {root} cannot be read: {exc}") from exc
        if not real.is_dir():
            raise RenderError(f"repository tree {root} is not a directory")
        if limits is not None and limits.allows("."):
            limits = None  # the whole repository is allowed (``**``): nothing to confine
        return cls(real, limits)

    def allows(self, label: str) -> bool:
        """Whether the limits let a render read ``label`` (a path relative to the root)."""
        return self.limits is None or self.limits.allows(label)

    def contains(self, real: Path) -> bool:
        return real == self.root or real.is_relative_to(self.root)

    def label_of(self, real: Path) -> str:
        """``real`` relative to the root, ``.`` for the root itself."""
        return real.relative_to(self.root).as_posix() or "."

    def confine(self, path: Path) -> Path:
        """The real path of ``path`` (which may not exist); ``Escape`` if it leaves the tree or
        the read limits."""
        real = Path(os.path.realpath(path))
        if not self.contains(real):
            raise Escape(str(real))
        if self.limits is not None and not self.limits.allows(self.label_of(real)):
            raise Escape(self.label_of(real), self.limits.describe())
        return real

    def locate(self, path: str) -> tuple[Path, str]:
        """The real path and the label of the directory (or file) ``path`` to render."""
        try:
            label = normal_path(path)
        except UnsafePath as exc:
            raise RenderError(f"path {path!r} is refused: {exc}") from exc
        if self.limits is not None and not self.limits.allows(label):
            raise RenderError(f"path {path!r} is outside {self.limits.describe()}")
        try:
            real = self.confine(self.root / label)
        except Escape as exc:
            if exc.limits:
                raise RenderError(f"path {path!r} points {exc.where()}; {exc.advice()}") from exc
            raise RenderError(
                f"path {path!r} leaves the repository (it points to {exc}); {exc.advice()}"
            ) from exc
        if not real.exists():
            raise RenderError(f"path {path!r} does not exist in the repository")
        return real, label

    def walk(self, real: Path, label: str, problems: Problems) -> Iterator[Entry]:
        """The units under ``real`` in path order (``real`` itself when it is a file)."""
        if real.is_dir():
            yield from self._walk_dir(real, label, problems, {real})
        elif _is_regular(real):
            yield Entry(real, label)
        else:
            problems.add(f"{label}: not a regular file or directory")

    def _walk_dir(
        self, real: Path, label: str, problems: Problems, seen: set[Path]
    ) -> Iterator[Entry]:
        kustomization = kustomization_in(real)
        if kustomization is not None:
            yield Entry(real, label, kustomization)
            return
        try:
            names = sorted(os.listdir(real))
        except OSError as exc:
            problems.add(f"{label}: cannot list the directory: {exc.strerror or exc}")
            return
        for name in names:
            if name.startswith("."):
                continue
            child_label = join(label, name)
            target = self._follow(real / name, child_label, problems)
            if target is None:
                continue
            if target.is_dir():
                if target in seen:
                    problems.add(
                        f"{child_label}: symlink loops back to {self.label_of(target)}, which is "
                        "already being rendered; remove the symlink"
                    )
                    continue
                yield from self._walk_dir(target, child_label, problems, seen | {target})
            elif name.lower().endswith(MANIFEST_SUFFIXES):
                if _is_regular(target):
                    yield Entry(target, child_label)
                else:
                    problems.add(f"{child_label}: not a regular file")

    def _follow(self, path: Path, label: str, problems: Problems) -> Path | None:
        """``path`` with symlinks resolved, or None (and a problem) when that leaves the tree."""
        if not path.is_symlink():
            return path
        try:
            real = self.confine(path)
        except Escape as exc:
            problems.add(f"{label}: symlink points {exc.where()}; {exc.advice()}")
            return None
        if not real.exists():
            problems.add(f"{label}: symlink points to {os.readlink(path)}, which does not exist")
            return None
        return real


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False
