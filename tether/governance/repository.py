"""A repository as lint reads it: its files, their texts, tether.yaml, and where objects are.

The file list is what Git would commit (tracked plus untracked-but-not-ignored files, from
``tether.source``); outside a Git work tree every file but ``.git/`` is read. Without a
tether.yaml the configuration is inferred from the directories found.

Nothing outside the repository is read: a symlink (to a file, or a directory next to the files)
whose real target lies outside ``root`` is recorded in ``escapes`` with the link text as
committed, and never opened, so lint reports it without showing, scanning or parsing what it
points to (an age key on the CI machine, say). Symlinks that stay inside are followed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from yaml.nodes import MappingNode, Node, ScalarNode

from tether.core import SourceLocation, kubeyaml
from tether.errors import TetherError
from tether.policy import config as config_module
from tether.policy.config import CONFIG_FILE, RepoConfig
from tether.policy.layout import (
    APPS,
    CLUSTERS,
    CODEOWNERS_LOCATIONS,
    MANIFEST_SUFFIXES,
    is_hidden,
    place_of,
)
from tether.source.changes import repository_files

_NOT_OBJECTS = ("kustomize.config.k8s.io/",)
MAX_BYTES = 2_000_000


@dataclass
class Repository:
    """One repository tree: ``files`` relative to ``root``, sorted, with ``/`` separators."""

    root: Path
    files: list[str]
    config: RepoConfig
    manifest_files: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str], list[SourceLocation]] = field(default_factory=dict)
    escapes: dict[str, str] = field(default_factory=dict)
    _texts: dict[str, str | None] = field(default_factory=dict)

    def read(self, path: str) -> str | None:
        """The text of ``path`` (None when unreadable, binary, too large, or when it really
        lies outside the repository)."""
        if path not in self._texts:
            self._texts[path] = _read(self.root / path) if self.inside(path) else None
        return self._texts[path]

    def inside(self, path: str) -> bool:
        """Whether ``path`` (relative, symlinks resolved) stays inside the repository."""
        real = Path(os.path.realpath(self.root / path))
        return real.is_relative_to(Path(os.path.realpath(self.root)))

    def codeowners(self) -> tuple[str | None, str | None]:
        for candidate in CODEOWNERS_LOCATIONS:
            if candidate in self.files or (self.root / candidate).is_file():
                return candidate, self.read(candidate)
        return None, None


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


def _walk(root: Path) -> list[str]:
    files: list[str] = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d != ".git")
        base = Path(directory).relative_to(root)
        files += [(base / name).as_posix() for name in names]
    return sorted(files)


def open_repository(root: Path) -> Repository:
    """Read ``root``: its file list, tether.yaml and the objects its manifest files define."""
    if not root.is_dir():
        raise TetherError(f"{root} is not a directory: name the repository to lint")
    files = repository_files(root)
    if files is None:
        files = _walk(root)
    repository = Repository(root, files, RepoConfig())
    repository.escapes = _escapes(repository)
    config_text = repository.read(CONFIG_FILE) if (root / CONFIG_FILE).is_file() else None
    if config_text is not None:
        repository.config = config_module.parse(config_text, CONFIG_FILE)
    else:
        repository.config = _inferred(files)
    charts = {str(PurePosixPath(path).parent) for path in files if path.endswith("/Chart.yaml")}
    for path in files:
        chart_file = any(under(path, chart) for chart in charts)  # templates are not objects
        manifest = path.endswith(MANIFEST_SUFFIXES) and path != CONFIG_FILE
        if manifest and not is_hidden(path) and not chart_file:
            _index_objects(repository, path)
    return repository


def _escapes(repository: Repository) -> dict[str, str]:
    """Symlinks leaving the repository, with their link text: the listed files, and the
    directory symlinks next to them (Git lists those as files; the walk does not enter them)."""
    found: dict[str, str] = {}
    directories = {str(PurePosixPath(path).parent) for path in repository.files}
    candidates = set(repository.files)
    for directory in directories:
        try:
            entries = list(os.scandir(repository.root / directory))
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink() and entry.name != ".git":
                candidates.add(str(PurePosixPath(directory) / entry.name).removeprefix("./"))
    for path in sorted(candidates):
        link = repository.root / path
        if link.is_symlink() and not repository.inside(path):
            try:
                found[path] = os.readlink(link)
            except OSError:
                found[path] = "?"
    return found


def _inferred(files: list[str]) -> RepoConfig:
    apps, environments, clusters = set(), set(), set()
    for path in files:
        place = place_of(path)
        if place.layer == APPS and place.app:
            apps.add(place.app)
        if place.environment:
            environments.add(place.environment)
        if place.layer == CLUSTERS and place.cluster:
            clusters.add(place.cluster)
    return config_module.infer(apps, environments, clusters)


def _index_objects(repository: Repository, path: str) -> None:
    text = repository.read(path)
    if not text:
        return
    try:
        documents = kubeyaml.compose_all(text)
    except kubeyaml.YamlProblem:  # the render reports it, limits included
        return
    for document in documents:
        if not isinstance(document, MappingNode):
            continue
        api_version = _scalar(document, "apiVersion")
        kind = _scalar(document, "kind")
        metadata = _get(document, "metadata")
        name = _scalar(metadata, "name") if isinstance(metadata, MappingNode) else ""
        if not (api_version and kind and name) or api_version.startswith(_NOT_OBJECTS):
            continue
        repository.manifest_files.add(path)
        location = SourceLocation(path, document.start_mark.line + 1)
        repository.objects.setdefault((kind, name), []).append(location)


def _get(node: MappingNode, key: str) -> Node | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node if isinstance(value_node, Node) else None
    return None


def _scalar(node: MappingNode, key: str) -> str:
    found = _get(node, key)
    return str(found.value) if isinstance(found, ScalarNode) else ""


def under(path: str, directory: str) -> bool:
    return PurePosixPath(path).is_relative_to(directory)
