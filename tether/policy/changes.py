"""Judging a change (the files changed since a ref): blast radius and who must review it.

- ``change-mixes-layers``: platform (``platform/``, ``clusters/``) and apps (``apps/``) in one
  change: a platform change reaches every app, so it lands (and can be reverted) on its own;
- ``change-multiple-environments``: overlays of several environments in one change, when
  ``policy.oneEnvironmentPerChange`` is on: promote one environment at a time instead. A change
  to a ``base/`` reaches every environment at once; it is reported in the review summary;
- ``change-multiple-teams``: files owned by more than one team (tether.yaml ``teams``, last
  matching glob wins), when ``policy.singleTeamPerChange`` is on.

The review names every owning team and its CODEOWNERS handles, whether or not a rule fired.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.policy.config import RepoConfig
from tether.policy.findings import Finding, Review
from tether.policy.layout import APPS, CLUSTERS, PLATFORM, place_of
from tether.policy.rules import RULES


@dataclass(frozen=True)
class ChangedFile:
    """One changed path: git's status letter (A, M, D, R, …) and, for renames, the old path."""

    status: str
    path: str
    old_path: str = ""


def layer_of(path: str) -> str:
    top = path.split("/", 1)[0]
    if top in (PLATFORM, CLUSTERS):
        return "platform"
    if top == APPS:
        return "apps"
    return "other"


def environment_of(path: str, config: RepoConfig) -> str:
    place = place_of(path)
    if place.environment:
        return place.environment
    if place.cluster:
        cluster = config.cluster(place.cluster)
        return cluster.environment if cluster else ""
    return ""


def judge(
    changes: list[ChangedFile], config: RepoConfig, since: str
) -> tuple[list[Finding], Review]:
    """The findings about one change, and who must review it."""
    paths = sorted({p for change in changes for p in (change.path, change.old_path) if p})
    by_layer: dict[str, list[str]] = {}
    by_environment: dict[str, list[str]] = {}
    by_team: dict[str, list[str]] = {}
    unowned: list[str] = []
    every_environment = False
    for path in paths:
        by_layer.setdefault(layer_of(path), []).append(path)
        environment = environment_of(path, config)
        if environment:
            by_environment.setdefault(environment, []).append(path)
        place = place_of(path)
        if place.part in ("base", "components"):
            every_environment = True
        team = config.owner_of(path)
        if team is None:
            unowned.append(path)
        else:
            by_team.setdefault(team.name, []).append(path)
    findings: list[Finding] = []
    if config.changes.separate_layers and "platform" in by_layer and "apps" in by_layer:
        findings.append(
            _finding(
                "change-mixes-layers",
                by_layer["apps"][0],
                f"this change touches the platform layer ({_some(by_layer['platform'])}) and "
                f"the app layer ({_some(by_layer['apps'])})",
            )
        )
    if config.changes.one_environment_per_change and len(by_environment) > 1:
        order = [env for env in config.environments if env in by_environment]
        order += sorted(set(by_environment) - set(order))
        findings.append(
            _finding(
                "change-multiple-environments",
                by_environment[order[-1]][0],
                f"this change touches {len(order)} environments at once: "
                + "; ".join(f"{env} ({_some(by_environment[env])})" for env in order),
            )
        )
    teams = [team.name for team in config.teams if team.name in by_team]
    if config.changes.single_team_per_change and len(teams) > 1:
        findings.append(
            _finding(
                "change-multiple-teams",
                by_team[teams[-1]][0],
                f"this change touches files of {len(teams)} teams: "
                + "; ".join(f"{team} ({_some(by_team[team])})" for team in teams),
            )
        )
    owners: list[str] = []
    for name in teams:
        team = config.team(name)
        for handle in team.handles if team else ():
            if handle not in owners:
                owners.append(handle)
    review = Review(
        since=since,
        files=tuple(paths),
        teams=tuple(teams),
        owners=tuple(owners),
        unowned=tuple(unowned),
        environments=tuple(env for env in config.environments if env in by_environment),
        layers=tuple(sorted(by_layer)),
        reaches_every_environment=every_environment,
    )
    return findings, review


def _finding(rule_id: str, path: str, message: str) -> Finding:
    rule = RULES[rule_id]
    return Finding(rule_id, path, message, 0, rule.severity, rule.hint)


def _some(paths: list[str], shown: int = 2) -> str:
    listed = ", ".join(paths[:shown])
    return f"{listed}, +{len(paths) - shown} more" if len(paths) > shown else listed
