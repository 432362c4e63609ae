"""``tether init``: a new GitOps repository laid out the way ``tether lint`` expects.

``plan(spec)`` returns every file to write (path → text) and is pure; ``write`` refuses to
overwrite an existing file unless forced, and writes nothing when it refuses. The layout and
the reasons for it are in ``docs/layout.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tether.errors import TetherError
from tether.policy import config as config_module
from tether.policy.config import (
    CONFIG_FILE,
    DNS1123_LABEL,
    PLATFORM_TEAM,
    App,
    Cluster,
    RepoConfig,
    Team,
)
from tether.policy.layout import CODEOWNERS_LOCATIONS
from tether.policy.ownership import codeowners

KUSTOMIZATION_HEADER = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
REGISTRY = "registry.example.com"
FIRST_VERSION = "0.1.0"


class ScaffoldError(TetherError):
    """``tether init`` was given names it cannot use, or would overwrite files."""


@dataclass(frozen=True)
class InitSpec:
    """What to scaffold. ``clusters`` are ``(name, environment)``; ``teams`` ``(name, globs)``
    (empty: a platform team owning everything, then one team per app owning ``apps/<app>/``);
    ``org`` makes CODEOWNERS handles ``@org/<team>``."""

    apps: tuple[str, ...]
    environments: tuple[str, ...] = config_module.DEFAULT_ENVIRONMENTS
    clusters: tuple[tuple[str, str], ...] = ()
    teams: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    org: str = ""


def parse_clusters(values: list[str], environments: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``c1=dev`` pairs; a bare name runs the environment it names (``prod-eu`` → prod), else
    the environments in promotion order (the first cluster dev, the second stage, …)."""
    clusters: list[tuple[str, str]] = []
    for position, value in enumerate(values):
        name, _, environment = value.partition("=")
        name, environment = name.strip(), environment.strip()
        if not environment:
            named = [env for env in environments if env in name.split("-") or name.startswith(env)]
            environment = named[0] if named else environments[min(position, len(environments) - 1)]
        clusters.append((name, environment))
    return tuple(clusters)


def parse_team(value: str) -> tuple[str, tuple[str, ...]]:
    """``web=apps/web/**,apps/api/**`` → ``("web", ("apps/web/**", "apps/api/**"))``."""
    name, separator, globs = value.partition("=")
    paths = tuple(glob.strip() for glob in globs.split(",") if glob.strip())
    if not separator or not paths:
        raise ScaffoldError(f"--team {value!r}: write NAME=path-glob[,path-glob…]")
    return name.strip(), paths


def _check(spec: InitSpec) -> None:
    for what, names in (
        ("app", spec.apps),
        ("environment", spec.environments),
        ("cluster", tuple(name for name, _ in spec.clusters)),
        ("team", tuple(name for name, _ in spec.teams)),
    ):
        for name in names:
            if not DNS1123_LABEL.fullmatch(name) or len(name) > 63:
                raise ScaffoldError(
                    f"{what} name {name!r} is not a DNS-1123 label (lowercase a-z, 0-9, '-')"
                )
        if len(set(names)) != len(names):
            raise ScaffoldError(f"a {what} name is given twice: {', '.join(names)}")
    if not spec.environments:
        raise ScaffoldError("name at least one environment (--envs dev,stage,prod)")
    for name, environment in spec.clusters:
        if environment not in spec.environments:
            raise ScaffoldError(
                f"cluster {name!r} runs environment {environment!r}, which is not one of "
                f"{', '.join(spec.environments)}"
            )


def configuration(spec: InitSpec) -> RepoConfig:
    """The tether.yaml ``spec`` describes, as a value (what ``tether_yaml`` writes out)."""
    clusters = spec.clusters or tuple((env, env) for env in spec.environments)

    def handles(team: str) -> tuple[str, ...]:
        return (f"@{spec.org}/{team}",) if spec.org else ()

    if spec.teams:
        teams = [Team(name, handles(name), paths) for name, paths in spec.teams]
    else:
        teams = [Team(PLATFORM_TEAM, handles(PLATFORM_TEAM), ("**",))]
        teams += [Team(app, handles(app), (f"apps/{app}/**",)) for app in spec.apps]
    draft = RepoConfig(teams=tuple(teams))
    apps = []
    for app in spec.apps:
        owner = draft.owner_of(f"apps/{app}/base/kustomization.yaml")
        apps.append(App(app, owner.name if owner else "", (app,)))
    final_teams = tuple(
        Team(
            team.name,
            team.owners,
            team.paths,
            tuple(app.name for app in apps if app.team == team.name),
        )
        for team in teams
    )
    return RepoConfig(
        environments=spec.environments,
        clusters=tuple(Cluster(name, env) for name, env in clusters),
        teams=final_teams,
        apps=tuple(apps),
    )


def plan(spec: InitSpec) -> dict[str, str]:
    """Every file of the new layout, by path."""
    _check(spec)
    config = configuration(spec)
    files: dict[str, str] = {CONFIG_FILE: tether_yaml(config), "CODEOWNERS": codeowners(config)}
    files |= _platform(config)
    for app in config.apps:
        files |= _app(app.name, config)
    for cluster in config.clusters:
        files |= _cluster(cluster, config)
    return files


def write(root: Path, files: dict[str, str], force: bool = False) -> list[str]:
    """Write ``files`` under ``root``; refuse (writing nothing) when one exists and not ``force``."""
    existing = sorted(path for path in files if (root / path).exists())
    if existing and not force:
        listed = ", ".join(existing[:8]) + (
            f" and {len(existing) - 8} more" if len(existing) > 8 else ""
        )
        raise ScaffoldError(
            f"{root}: {len(existing)} file(s) already exist ({listed}); nothing was written. "
            "Use --force to overwrite them"
        )
    written = []
    for path, text in sorted(files.items()):
        target = root / path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        except OSError as exc:
            raise ScaffoldError(f"cannot write {target}: {exc.strerror or exc}") from exc
        written.append(path)
    return written


def regenerate_codeowners(root: Path) -> str:
    """Rewrite CODEOWNERS (where the repository keeps it: root, ``.github/`` or ``docs/``) from
    the repository's tether.yaml; the path written."""
    path = root / CONFIG_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScaffoldError(
            f"{path} cannot be read ({exc.strerror or exc}); run `tether init` first"
        ) from exc
    config = config_module.parse(text, CONFIG_FILE)
    target = next(
        (where for where in CODEOWNERS_LOCATIONS if (root / where).is_file()), "CODEOWNERS"
    )
    write(root, {target: codeowners(config)}, force=True)
    return target


# -- file contents ------------------------------------------------------------------------------


def _list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def tether_yaml(config: RepoConfig) -> str:
    environments = config.environments
    last = environments[-1]
    lines = [
        "# tether.yaml: how this repository is laid out and governed. `tether lint` checks the",
        "# repository against it; CODEOWNERS is generated from `teams` (`tether init",
        "# --codeowners-only`). See docs/layout.md and docs/lint.md in Tether.",
        f"apiVersion: {config_module.API_VERSION}",
        f"kind: {config_module.KIND}",
        "",
        "# Promotion order: a change lands in the first environment and moves right.",
        "environments:",
        *[f"  - name: {env}" for env in environments],
        "",
        "# What each cluster runs: clusters/<name>/ lists the overlays of its environment.",
        "clusters:",
        *[f"  - name: {c.name}\n    environment: {c.environment}" for c in config.clusters],
        "",
        "# Who owns what. `paths` are globs from the repository root; as in CODEOWNERS the last",
        "# matching glob wins. `owners` are CODEOWNERS handles (@user, @org/team).",
        "# `namespaces` are the namespaces the team's apps may write to.",
        "teams:",
    ]
    for team in config.teams:
        lines.append(f"  - name: {team.name}")
        lines.append(f"    owners: {_list([_quoted(h) for h in team.handles])}")
        lines.append(f"    paths: {_list([_quoted(p) for p in team.paths])}")
        lines.append(f"    namespaces: {_list(list(team.namespaces))}")
    lines += ["", "# Each app, its team, and the namespaces it may write to.", "apps:"]
    if not config.apps:
        lines[-1] = "apps: []"
    for app in config.apps:
        lines.append(f"  - name: {app.name}")
        if app.team:
            lines.append(f"    team: {app.team}")
        lines.append(f"    namespaces: {_list(list(app.namespaces))}")
    lines += [
        "",
        "# metadata.name is always checked against DNS-1123. Patterns add house rules:",
        "# <app>, <env>, <team> are the overlay's own; <component> is any DNS label;",
        "# [brackets] are optional.",
        "naming:",
        "  rules:",
        "    - description: workloads and services are named after their app",
        '      paths: ["apps/**"]',
        "      kinds: [Deployment, StatefulSet, DaemonSet, Service]",
        '      pattern: "<app>[-<component>]"',
        "",
        "policy:",
        "  # A change touches one environment's overlays; promote with one change per step.",
        "  oneEnvironmentPerChange: true",
        "  # A change touches platform/ + clusters/ or apps/, never both.",
        "  separateLayers: true",
        "  # A change touches the files of one team.",
        "  singleTeamPerChange: true",
        "  # Image rules per environment (or `default` for all).",
        "  images:",
        f"    {last}:",
        "      forbidLatest: true",
        "      requireTagOrDigest: true",
        "",
        "# Accepted secret-scan findings: a fingerprint (printed by `tether lint`), or a path glob",
        "# and a rule id; every entry needs a reason.",
        "allowlist: []",
        "",
    ]
    return "\n".join(lines)


def _quoted(value: str) -> str:
    return f'"{value}"'


def _kustomization(body: str) -> str:
    return KUSTOMIZATION_HEADER + body


def _environment_labels(environment: str) -> str:
    return (
        "labels:\n"
        "  - pairs:\n"
        f"      tether.dev/environment: {environment}\n"
        "    includeSelectors: false\n"
    )


def _platform(config: RepoConfig) -> dict[str, str]:
    namespaces = []
    for app in config.apps:
        for namespace in app.namespaces:
            namespaces.append(
                "apiVersion: v1\n"
                "kind: Namespace\n"
                "metadata:\n"
                f"  name: {namespace}\n"
                "  labels:\n"
                f"    tether.dev/team: {app.team or app.name}\n"
            )
    files = {
        "platform/base/kustomization.yaml": _kustomization(
            "# The baseline every environment shares: namespaces, RBAC, policies, CRDs.\n"
            "resources:\n  - namespaces.yaml\n"
            if namespaces
            else "# The baseline every environment shares: namespaces, RBAC, policies, CRDs.\n"
            "resources: []\n"
        ),
    }
    if namespaces:
        files["platform/base/namespaces.yaml"] = (
            "# One namespace per app: the platform owns namespaces, apps own what is in them.\n"
            + "---\n".join(namespaces)
        )
    for environment in config.environments:
        files[f"platform/overlays/{environment}/kustomization.yaml"] = _kustomization(
            f"# The platform in {environment}: only what differs from platform/base.\n"
            "resources:\n  - ../../base\n" + _environment_labels(environment)
        )
    return files


def _app(app: str, config: RepoConfig) -> dict[str, str]:
    namespace = app
    found = config.app(app)
    if found and found.namespaces:
        namespace = found.namespaces[0]
    image = f"{REGISTRY}/{app}"
    files = {
        f"apps/{app}/base/kustomization.yaml": _kustomization(
            f"# {app}: the configuration every environment shares.\n"
            f"namespace: {namespace}\n"
            "resources:\n  - deployment.yaml\n  - service.yaml\n"
        ),
        f"apps/{app}/base/deployment.yaml": (
            "apiVersion: apps/v1\n"
            "kind: Deployment\n"
            "metadata:\n"
            f"  name: {app}\n"
            "  labels:\n"
            f"    app.kubernetes.io/name: {app}\n"
            "spec:\n"
            "  replicas: 1\n"
            "  selector:\n"
            "    matchLabels:\n"
            f"      app.kubernetes.io/name: {app}\n"
            "  template:\n"
            "    metadata:\n"
            "      labels:\n"
            f"        app.kubernetes.io/name: {app}\n"
            "    spec:\n"
            "      containers:\n"
            f"        - name: {app}\n"
            f"          image: {image}:{FIRST_VERSION}\n"
            "          ports:\n"
            "            - name: http\n"
            "              containerPort: 8080\n"
            "          resources:\n"
            "            requests:\n"
            "              cpu: 50m\n"
            "              memory: 64Mi\n"
        ),
        f"apps/{app}/base/service.yaml": (
            "apiVersion: v1\n"
            "kind: Service\n"
            "metadata:\n"
            f"  name: {app}\n"
            "spec:\n"
            "  selector:\n"
            f"    app.kubernetes.io/name: {app}\n"
            "  ports:\n"
            "    - name: http\n"
            "      port: 80\n"
            "      targetPort: http\n"
        ),
    }
    last = config.environments[-1]
    for environment in config.environments:
        replicas = (
            f"replicas:\n  - name: {app}\n    count: 2\n"
            if environment == last and len(config.environments) > 1
            else ""
        )
        files[f"apps/{app}/overlays/{environment}/kustomization.yaml"] = _kustomization(
            f"# {app} in {environment}: only what differs from the base. Promote a version by\n"
            "# copying newTag from the previous environment's overlay.\n"
            "resources:\n  - ../../base\n"
            + _environment_labels(environment)
            + f'images:\n  - name: {image}\n    newTag: "{FIRST_VERSION}"\n'
            + replicas
        )
    return files


def _cluster(cluster: Cluster, config: RepoConfig) -> dict[str, str]:
    environment = cluster.environment
    resources = [f"../../platform/overlays/{environment}"]
    resources += [f"../../apps/{app.name}/overlays/{environment}" for app in config.apps]
    return {
        f"clusters/{cluster.name}/kustomization.yaml": _kustomization(
            f"# What cluster {cluster.name} runs: the {environment} overlays of the platform and\n"
            "# of every app. Point the cluster's Tether agent (or `tether sync --path`) here.\n"
            "resources:\n" + "".join(f"  - {path}\n" for path in resources)
        )
    }
