"""The repository layout, and the checks that every file sits where it belongs.

    platform/base/                    the platform baseline every environment shares
    platform/overlays/<env>/          what differs per environment (one overlay per environment)
    platform/components/<name>/       optional kustomize components
    apps/<app>/base/                  one app's configuration, the same in every environment
    apps/<app>/overlays/<env>/        the app in one environment
    apps/<app>/components/<name>/     optional kustomize components
    clusters/<cluster>/               what one cluster runs: the overlays of its environment
    tether.yaml, CODEOWNERS           governance: environments, teams, naming, policy, owners

Documentation (``README*``, ``*.md``, ``docs/``) and hidden files (``.github/``, ``.sops.yaml``)
may sit anywhere. ``units(files)`` lists the directories lint renders: every overlay, every
cluster, and the base of an app without overlays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tether.core import Manifest
from tether.policy.config import CONFIG_FILE, RepoConfig
from tether.policy.findings import Finding
from tether.policy.rules import RULES

PLATFORM, APPS, CLUSTERS = "platform", "apps", "clusters"
LAYERS = (PLATFORM, APPS, CLUSTERS)
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CODEOWNERS_LOCATIONS = ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS")
ALWAYS_ALLOWED_TOP_LEVEL = (*LAYERS, CONFIG_FILE, "CODEOWNERS", "docs")
DOC_PREFIXES = ("readme", "license", "licence", "notice", "contributing", "security", "changelog")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Place:
    """Where a path sits in the layout. ``part`` is ``base``, ``overlays``, ``components`` or
    ``""``; ``environment`` is set for overlays, ``cluster`` for cluster directories."""

    layer: str
    app: str = ""
    part: str = ""
    environment: str = ""
    cluster: str = ""
    unit: str = ""
    """The directory this path belongs to as a render unit (``apps/web/overlays/dev``)."""


@dataclass(frozen=True)
class Unit:
    """A rendered directory and what the layout says about it."""

    path: str
    place: Place
    manifests: tuple[Manifest, ...] = field(default=())

    @property
    def owner(self) -> str:
        """Who defines these objects: the app's name, or ``platform``."""
        return self.place.app or self.place.layer


def place_of(path: str) -> Place:
    """The layout's reading of ``path`` (relative to the repository root)."""
    parts = PurePosixPath(path).parts
    if not parts or parts[0] not in LAYERS:
        return Place(layer="")
    layer = parts[0]
    if layer == CLUSTERS:
        if len(parts) < 3:
            return Place(layer)
        return Place(layer, cluster=parts[1], unit=f"{CLUSTERS}/{parts[1]}")
    if layer == APPS:
        if len(parts) < 3:
            return Place(layer)
        app, rest, prefix = parts[1], parts[2:], f"{APPS}/{parts[1]}"
    else:
        app, rest, prefix = "", parts[1:], PLATFORM
    part = rest[0] if len(rest) > 1 else ""
    if part == "overlays" and len(rest) > 2:
        return Place(layer, app, part, environment=rest[1], unit=f"{prefix}/overlays/{rest[1]}")
    if part == "base":
        return Place(layer, app, part, unit=f"{prefix}/base")
    if part == "components" and len(rest) > 2:
        return Place(layer, app, part, unit=f"{prefix}/components/{rest[1]}")
    return Place(layer, app)


def is_documentation(path: str) -> bool:
    name = PurePosixPath(path).name.lower()
    return name.endswith((".md", ".txt", ".rst")) or name.startswith(DOC_PREFIXES)


def is_hidden(path: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(path).parts)


def units(files: Iterable[str]) -> list[str]:
    """The directories lint renders, sorted: overlays, clusters, and bases of apps without
    overlays (platform, then apps, then clusters)."""
    found: set[str] = set()
    bases: set[str] = set()
    with_overlays: set[str] = set()
    for path in files:
        if is_documentation(path) or is_hidden(path):
            continue
        place = place_of(path)
        if place.layer == CLUSTERS and place.unit:
            found.add(place.unit)
        elif place.part == "overlays" and place.unit:
            found.add(place.unit)
            with_overlays.add(place.app or PLATFORM)
        elif place.part == "base" and place.unit:
            bases.add(place.unit)
    for base in bases:
        owner = place_of(base + "/x").app or PLATFORM
        if owner not in with_overlays:
            found.add(base)
    order = {PLATFORM: 0, APPS: 1, CLUSTERS: 2}
    return sorted(found, key=lambda unit: (order[unit.split("/")[0]], unit))


def check(files: Iterable[str], manifest_files: set[str], config: RepoConfig) -> list[Finding]:
    """Layout findings for the repository's ``files``; ``manifest_files`` are those holding
    Kubernetes objects."""
    files = sorted(files)
    findings: list[Finding] = []
    findings += _top_level(files, manifest_files, config)
    findings += _placement(files, manifest_files, config)
    findings += _kustomizations(files)
    return findings


def _finding(rule_id: str, path: str, message: str, hint: str = "", line: int = 0) -> Finding:
    rule = RULES[rule_id]
    return Finding(rule_id, path, message, line, rule.severity, hint or rule.hint)


def _top_level(files: list[str], manifest_files: set[str], config: RepoConfig) -> list[Finding]:
    allowed = set(ALWAYS_ALLOWED_TOP_LEVEL) | set(config.allowed_top_level)
    findings: list[Finding] = []
    reported: set[str] = set()
    for path in files:
        top = PurePosixPath(path).parts[0]
        nested = "/" in path
        if top in LAYERS:
            continue
        if path in manifest_files:
            findings.append(
                _finding(
                    "layout-manifest-outside",
                    path,
                    "this file holds Kubernetes objects, but it is not under platform/, apps/ "
                    "or clusters/, so no environment deploys it",
                )
            )
            continue
        if top in allowed or top.startswith(".") or (not nested and is_documentation(path)):
            continue
        if top in reported:
            continue
        reported.add(top)
        what = "directory" if nested else "file"
        findings.append(
            _finding(
                "layout-unknown-top-level",
                f"{top}/" if nested else top,
                f"top-level {what} {top!r} is not part of the layout "
                "(platform/, apps/, clusters/, tether.yaml, CODEOWNERS, docs/)",
            )
        )
    return findings


def _placement(files: list[str], manifest_files: set[str], config: RepoConfig) -> list[Finding]:
    findings: list[Finding] = []
    reported: set[str] = set()

    def once(key: str, finding: Finding) -> None:
        if key not in reported:
            reported.add(key)
            findings.append(finding)

    apps = {app.name for app in config.apps}
    clusters = {cluster.name for cluster in config.clusters}
    for path in files:
        place = place_of(path)
        if not place.layer or is_hidden(path):
            continue
        documentation = is_documentation(path)
        parts = PurePosixPath(path).parts
        if place.layer == CLUSTERS:
            if len(parts) == 2 and not documentation:
                once(path, _misplaced(path, "clusters/ holds one directory per cluster"))
            elif place.cluster and config.declared and place.cluster not in clusters:
                once(
                    f"cluster:{place.cluster}",
                    _finding(
                        "layout-undeclared",
                        f"clusters/{place.cluster}/",
                        f"cluster {place.cluster!r} is not declared in tether.yaml clusters",
                    ),
                )
            continue
        if place.layer == APPS and len(parts) >= 3 and config.declared and parts[1] not in apps:
            once(
                f"app:{parts[1]}",
                _finding(
                    "layout-undeclared",
                    f"apps/{parts[1]}/",
                    f"app {parts[1]!r} is not declared in tether.yaml apps",
                ),
            )
        if place.environment and place.environment not in config.environments:
            prefix = f"apps/{place.app}" if place.app else PLATFORM
            once(
                f"env:{prefix}:{place.environment}",
                _finding(
                    "layout-undeclared",
                    f"{prefix}/overlays/{place.environment}/",
                    f"environment {place.environment!r} is not one of {list(config.environments)}",
                ),
            )
        if not place.unit and not documentation:
            where = "apps/<app>/" if place.layer == APPS else "platform/"
            if path in manifest_files or path.endswith(MANIFEST_SUFFIXES):
                once(
                    path,
                    _misplaced(
                        path, f"{where} holds only base/, overlays/<environment>/ and components/"
                    ),
                )
    return findings


def _misplaced(path: str, why: str) -> Finding:
    return _finding("layout-misplaced", path, f"this file has no place here: {why}")


def _kustomizations(files: list[str]) -> list[Finding]:
    directories: dict[str, set[str]] = {}
    for path in files:
        place = place_of(path)
        if not place.unit or is_hidden(path) or is_documentation(path):
            continue
        directories.setdefault(place.unit, set()).add(path)
    findings: list[Finding] = []
    for unit, paths in sorted(directories.items()):
        names = {f"{unit}/{name}" for name in KUSTOMIZATION_FILES}
        if not names & paths:
            findings.append(
                _finding(
                    "layout-missing-kustomization",
                    f"{unit}/",
                    f"{unit} has no kustomization.yaml; overlays, bases and cluster "
                    "directories are built with kustomize",
                )
            )
    return findings
