"""``tether.yaml``: how a repository is laid out and governed, parsed into one frozen value.

    environments   the promotion order (dev → stage → prod)
    clusters       which environment each cluster runs
    teams          who owns which paths (globs; the last matching glob wins, as in CODEOWNERS)
                   and namespaces, with their CODEOWNERS handles
    apps           each app's team and namespaces
    naming         name patterns on top of DNS-1123 (which always applies)
    policy         change rules and per-environment image rules
    allowlist      accepted findings (secret-scan exceptions): by path glob + rule, or fingerprint
    layout         extra top-level entries the layout allows

Parsing is pure: ``parse(text)`` raises ``ConfigError`` naming ``tether.yaml:line`` and the
field. ``infer(...)`` builds the configuration lint falls back to when there is no tether.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from tether.core import kubeyaml
from tether.core.repopath import UnsafePath, normal_path
from tether.errors import TetherError
from tether.policy.access import Tenancy
from tether.policy.globs import matches
from tether.policy.patterns import PatternError, compile_pattern

CONFIG_FILE = "tether.yaml"
API_VERSION = "tether.dev/v1alpha1"
KIND = "Repository"
DEFAULT_ENVIRONMENTS = ("dev", "stage", "prod")
PLATFORM_TEAM = "platform"

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class ConfigError(TetherError):
    """tether.yaml is missing a required field or has one of the wrong shape."""


@dataclass(frozen=True)
class ImageRules:
    """What images an environment accepts."""

    forbid_latest: bool = False
    require_tag_or_digest: bool = False
    require_digest: bool = False

    @property
    def any(self) -> bool:
        return self.forbid_latest or self.require_tag_or_digest or self.require_digest


@dataclass(frozen=True)
class Team:
    name: str
    owners: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    allow_kinds: tuple[str, ...] = ()
    deny_kinds: tuple[str, ...] = ()
    cluster_scoped: bool = False

    def tenancy(self) -> Tenancy:
        """What this team may deploy at sync time (see ``access.py``)."""
        return Tenancy(
            self.name,
            self.paths,
            self.namespaces,
            self.allow_kinds,
            self.deny_kinds,
            self.cluster_scoped,
        )

    @property
    def handles(self) -> tuple[str, ...]:
        """CODEOWNERS handles; ``@<team>`` when tether.yaml names none."""
        return self.owners or (f"@{self.name}",)


@dataclass(frozen=True)
class App:
    name: str
    team: str = ""
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    name: str
    environment: str


@dataclass(frozen=True)
class NamingRule:
    """``pattern`` with placeholders ``<app>``, ``<env>``, ``<team>``, ``<component>`` (any
    DNS label), and optional parts in brackets: ``<app>[-<component>]``."""

    pattern: str
    kinds: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ChangePolicy:
    one_environment_per_change: bool = True
    separate_layers: bool = True
    single_team_per_change: bool = True


@dataclass(frozen=True)
class AllowEntry:
    """An accepted finding: every given field must match (``path`` is a glob)."""

    reason: str
    path: str = ""
    rule: str = ""
    fingerprint: str = ""


@dataclass(frozen=True)
class RepoConfig:
    environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    clusters: tuple[Cluster, ...] = ()
    teams: tuple[Team, ...] = ()
    apps: tuple[App, ...] = ()
    naming: tuple[NamingRule, ...] = ()
    changes: ChangePolicy = field(default_factory=ChangePolicy)
    images: dict[str, ImageRules] = field(default_factory=dict)
    allowlist: tuple[AllowEntry, ...] = ()
    allowed_top_level: tuple[str, ...] = ()
    declared: bool = True
    """False when lint inferred this configuration because tether.yaml is missing."""

    def app(self, name: str) -> App | None:
        return next((app for app in self.apps if app.name == name), None)

    def team(self, name: str) -> Team | None:
        return next((team for team in self.teams if team.name == name), None)

    def cluster(self, name: str) -> Cluster | None:
        return next((cluster for cluster in self.clusters if cluster.name == name), None)

    def image_rules(self, environment: str) -> ImageRules:
        return self.images.get(environment) or self.images.get("default") or ImageRules()

    def app_namespaces(self, name: str) -> tuple[str, ...]:
        """Namespace globs app ``name`` may write to: its own, plus its team's; the app's name
        when neither declares any."""
        app = self.app(name)
        own = app.namespaces if app else ()
        team = self.team(app.team) if app and app.team else None
        allowed = tuple(dict.fromkeys(own + (team.namespaces if team else ())))
        return allowed or (name,)

    def owner_of(self, path: str) -> Team | None:
        """The team owning ``path``: the last matching glob wins, as in CODEOWNERS."""
        owner: Team | None = None
        for team in self.teams:
            for glob in team.paths:
                if matches(glob, path):
                    owner = team
        return owner


def parse(text: str, where: str = CONFIG_FILE) -> RepoConfig:
    """The configuration in ``text``; ``ConfigError`` names ``where:line`` and the field."""
    try:
        data = kubeyaml.load(text)
        node = kubeyaml.compose(text)
    except kubeyaml.YamlProblem as exc:
        line = f":{exc.line}" if exc.line else ""
        problem = exc.problem.removeprefix("invalid YAML: ")
        if not isinstance(exc, kubeyaml.YamlLimitExceeded):
            problem = f"not valid YAML: {problem}"
        raise ConfigError(f"{where}{line}: {problem}") from None
    reader = _Reader(data if data is not None else {}, _lines(node), where)
    return reader.config()


def infer(apps: Iterable[str], environments: Iterable[str], clusters: Iterable[str]) -> RepoConfig:
    """What lint assumes without tether.yaml: the directories found, one team per app."""
    app_names = sorted(set(apps))
    envs = tuple(sorted(set(environments), key=_promotion_key)) or DEFAULT_ENVIRONMENTS
    teams = (
        Team(PLATFORM_TEAM, paths=("**",)),
        *tuple(Team(name, paths=(f"apps/{name}/**",)) for name in app_names),
    )
    return RepoConfig(
        environments=envs,
        clusters=tuple(Cluster(name, _guess_environment(name, envs)) for name in sorted(clusters)),
        teams=teams,
        apps=tuple(App(name, team=name) for name in app_names),
        declared=False,
    )


def _promotion_key(name: str) -> tuple[int, str]:
    order = {"dev": 0, "development": 0, "test": 1, "qa": 1, "stage": 2, "staging": 2}
    order |= {"prod": 3, "production": 3}
    return order.get(name, 2), name


def _guess_environment(cluster: str, environments: tuple[str, ...]) -> str:
    for environment in environments:
        if environment in cluster.split("-") or cluster.startswith(environment):
            return environment
    return environments[0]


def _lines(node: Node | None) -> dict[tuple[str | int, ...], int]:
    """The 1-based line of every key and item, by its path from the document root."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(current: Node, path: tuple[str | int, ...]) -> None:
        lines[path] = current.start_mark.line + 1
        if isinstance(current, MappingNode):
            for key_node, value_node in current.value:
                key = str(key_node.value)
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(current, SequenceNode):
            for index, item in enumerate(current.value):
                walk(item, (*path, index))

    if node is not None:
        walk(node, ())
    return lines


@dataclass
class _Reader:
    data: Any
    lines: dict[tuple[str | int, ...], int]
    where: str

    # -- plumbing ---------------------------------------------------------------------------

    def fail(self, path: tuple[str | int, ...], problem: str) -> ConfigError:
        line = 0
        for length in range(len(path), -1, -1):
            line = self.lines.get(path[:length], 0)
            if line:
                break
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        location = f"{self.where}:{line}" if line else self.where
        return ConfigError(f"{location}: {dotted or 'document'}: {problem}")

    def get(self, path: tuple[str | int, ...]) -> Any:
        value = self.data
        for part in path:
            if isinstance(part, int):
                value = value[part]
            else:
                value = value.get(part) if isinstance(value, dict) else None
        return value

    def mapping(self, path: tuple[str | int, ...], required: bool = False) -> dict[str, Any]:
        value = self.get(path)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        return value

    def items(self, path: tuple[str | int, ...]) -> list[Any]:
        value = self.get(path)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, "must be a list")
        return value

    def strings(self, path: tuple[str | int, ...]) -> tuple[str, ...]:
        value = self.get(path)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(path, "must be a list of non-empty strings")
        return tuple(value)

    def string(self, path: tuple[str | int, ...], required: bool = False) -> str:
        value = self.get(path)
        if value is None:
            if required:
                raise self.fail(path, "is required")
            return ""
        if not isinstance(value, str) or (required and not value):
            raise self.fail(path, "must be a non-empty string")
        return value

    def flag(self, path: tuple[str | int, ...], default: bool) -> bool:
        value = self.get(path)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value

    def label(self, path: tuple[str | int, ...]) -> str:
        value = self.string(path, required=True)
        if not DNS1123_LABEL.fullmatch(value) or len(value) > 63:
            raise self.fail(path, f"{value!r} is not a DNS-1123 label (lowercase a-z, 0-9, '-')")
        return value

    def names(self, path: tuple[str | int, ...]) -> list[tuple[int, str]]:
        """The ``name`` of each item of the list at ``path``, checked unique."""
        seen: set[str] = set()
        result: list[tuple[int, str]] = []
        for index, item in enumerate(self.items(path)):
            if isinstance(item, str):
                name = self.label((*path, index))
            else:
                self.mapping((*path, index), required=True)
                name = self.label((*path, index, "name"))
            if name in seen:
                raise self.fail((*path, index), f"{name!r} is declared twice")
            seen.add(name)
            result.append((index, name))
        return result

    # -- sections ---------------------------------------------------------------------------

    def config(self) -> RepoConfig:
        if not isinstance(self.data, dict):
            raise self.fail((), "must be a mapping")
        known = {"apiVersion", "kind", "environments", "clusters", "teams", "apps", "naming"}
        known |= {"policy", "allowlist", "layout"}
        for key in self.data:
            if key not in known:
                raise self.fail((str(key),), f"unknown field (expected one of {sorted(known)})")
        api_version = self.string(("apiVersion",))
        if api_version and api_version != API_VERSION:
            raise self.fail(("apiVersion",), f"must be {API_VERSION}")
        environments = tuple(name for _, name in self.names(("environments",)))
        if not environments:
            raise self.fail(("environments",), "declare at least one environment")
        teams = self.teams()
        return RepoConfig(
            environments=environments,
            clusters=self.clusters(environments),
            teams=teams,
            apps=self.apps({team.name for team in teams}),
            naming=self.naming(),
            changes=self.change_policy(),
            images=self.images(environments),
            allowlist=self.allowlist(),
            allowed_top_level=self.strings(("layout", "allowedTopLevel")),
        )

    def clusters(self, environments: tuple[str, ...]) -> tuple[Cluster, ...]:
        clusters = []
        for index, name in self.names(("clusters",)):
            environment = self.string(("clusters", index, "environment"), required=True)
            if environment not in environments:
                raise self.fail(
                    ("clusters", index, "environment"),
                    f"{environment!r} is not one of the environments {list(environments)}",
                )
            clusters.append(Cluster(name, environment))
        return tuple(clusters)

    def teams(self) -> tuple[Team, ...]:
        teams = []
        for index, name in self.names(("teams",)):
            path = ("teams", index)
            owners = self.strings((*path, "owners"))
            for position, owner in enumerate(owners):
                if not owner.startswith("@") and "@" not in owner:
                    raise self.fail(
                        (*path, "owners", position),
                        f"{owner!r} is not a CODEOWNERS owner (@user, @org/team or an email)",
                    )
            paths = self.strings((*path, "paths"))
            for position, glob in enumerate(paths):
                try:
                    normal_path(glob.strip().lstrip("/"))
                except UnsafePath as exc:
                    raise self.fail(
                        (*path, "paths", position), f"{glob!r} is refused: {exc}"
                    ) from exc
            namespaces = self.strings((*path, "namespaces"))
            allow = self.strings((*path, "kinds", "allow"))
            deny = self.strings((*path, "kinds", "deny"))
            scoped = self.flag((*path, "clusterScoped"), False)
            teams.append(Team(name, owners, paths, namespaces, allow, deny, scoped))
        return tuple(teams)

    def apps(self, teams: set[str]) -> tuple[App, ...]:
        apps = []
        for index, name in self.names(("apps",)):
            path = ("apps", index)
            if not isinstance(self.get(path), dict):
                apps.append(App(name))
                continue
            team = self.string((*path, "team"))
            if team and team not in teams:
                raise self.fail((*path, "team"), f"{team!r} is not one of the teams")
            apps.append(App(name, team, self.strings((*path, "namespaces"))))
        return tuple(apps)

    def naming(self) -> tuple[NamingRule, ...]:
        self.mapping(("naming",))
        rules = []
        for index, _ in enumerate(self.items(("naming", "rules"))):
            path = ("naming", "rules", index)
            self.mapping(path, required=True)
            pattern = self.string((*path, "pattern"), required=True)
            try:
                compile_pattern(pattern, {})
            except PatternError as exc:
                raise self.fail((*path, "pattern"), str(exc)) from None
            rules.append(
                NamingRule(
                    pattern,
                    self.strings((*path, "kinds")),
                    self.strings((*path, "paths")),
                    self.string((*path, "description")),
                )
            )
        return tuple(rules)

    def change_policy(self) -> ChangePolicy:
        self.mapping(("policy",))
        return ChangePolicy(
            one_environment_per_change=self.flag(("policy", "oneEnvironmentPerChange"), True),
            separate_layers=self.flag(("policy", "separateLayers"), True),
            single_team_per_change=self.flag(("policy", "singleTeamPerChange"), True),
        )

    def images(self, environments: tuple[str, ...]) -> dict[str, ImageRules]:
        rules: dict[str, ImageRules] = {}
        for environment in self.mapping(("policy", "images")):
            path = ("policy", "images", str(environment))
            if environment != "default" and environment not in environments:
                raise self.fail(path, f"{environment!r} is not one of the environments")
            self.mapping(path, required=True)
            rules[str(environment)] = ImageRules(
                forbid_latest=self.flag((*path, "forbidLatest"), False),
                require_tag_or_digest=self.flag((*path, "requireTagOrDigest"), False),
                require_digest=self.flag((*path, "requireDigest"), False),
            )
        return rules

    def allowlist(self) -> tuple[AllowEntry, ...]:
        entries = []
        for index, _ in enumerate(self.items(("allowlist",))):
            path = ("allowlist", index)
            self.mapping(path, required=True)
            entry = AllowEntry(
                reason=self.string((*path, "reason"), required=True),
                path=self.string((*path, "path")),
                rule=self.string((*path, "rule")),
                fingerprint=self.string((*path, "fingerprint")),
            )
            if not entry.fingerprint and not entry.path:
                raise self.fail(path, "name a fingerprint, or a path (and optionally a rule)")
            entries.append(entry)
        return tuple(entries)
