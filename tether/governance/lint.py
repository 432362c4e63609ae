"""``tether lint``: one pass over a repository, composing rendering, git and the policy checks.

    lint(root, settings) -> Report

In order: tether.yaml (or what the directories suggest), the layout of every file, CODEOWNERS,
secrets in every file, then every overlay and cluster directory is rendered and its objects are
checked (names, images per environment, namespaces, one owner per object), validated against
the offline schemas (or dry-run on a cluster), and, with ``changed_since``, the change itself
is judged. Findings the allowlist accepts are set aside, and the report is sorted.

Objects of a cluster directory that come from the overlays it lists are checked once, where
the overlay is; only what a cluster directory defines itself is checked there.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from tether.analysis import is_template, read_template
from tether.core import Manifest
from tether.errors import AnalysisError, RenderError
from tether.governance import charts, dryrun, locate, schemas
from tether.governance.repository import Repository, open_repository, under
from tether.governance.settings import LintSettings
from tether.policy import allowlist, changes, images, layout, naming, ownership, secrets, tenancy
from tether.policy.config import CONFIG_FILE
from tether.policy.findings import Finding, Report
from tether.policy.layout import CLUSTERS, KUSTOMIZATION_FILES, Place, Unit, place_of
from tether.policy.rules import RULES
from tether.render import RenderSettings, render
from tether.source.changes import changed_files

RENDER_WORKERS = 4
"""kustomize builds run at once (each is a short-lived process)."""
_CHANGE_RULES = ("change-mixes-layers", "change-multiple-environments", "change-multiple-teams")


@dataclass
class _Run:
    repository: Repository
    settings: LintSettings
    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def config_path(self) -> str:
        return CONFIG_FILE if self.repository.config.declared else "."


def lint(root: Path, settings: LintSettings) -> Report:
    """Every finding about the repository at ``root``."""
    repository = open_repository(root)
    run = _Run(repository, settings)
    _files(run)
    checked_units, all_units = _objects(run)
    _validate(run, checked_units, all_units)
    review = None
    if settings.changed_since:
        changed = [
            changes.ChangedFile(status, path, old)
            for status, path, old in changed_files(root, settings.changed_since)
        ]
        found, review = changes.judge(changed, repository.config, settings.changed_since)
        run.findings += found
        run.checked["changed files"] = len(review.files)
    kept, suppressed = allowlist.apply(_unique(run.findings), repository.config.allowlist)
    report = Report(
        root=str(root.resolve()),
        findings=kept,
        suppressed=suppressed,
        review=review,
        checked=run.checked,
        rules=_rules_run(settings),
    )
    report.sort()
    return report


def _rules_run(settings: LintSettings) -> list[str]:
    skipped = set() if settings.changed_since else set(_CHANGE_RULES)
    if settings.cluster is None:
        skipped.add("dry-run-rejected")
    else:
        skipped |= {"schema-invalid", "schema-unavailable", "schema-unknown-kind"}
    return [rule_id for rule_id in RULES if rule_id not in skipped]


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, int, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.rule, finding.path, finding.line, finding.message)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


# -- files ----------------------------------------------------------------------------------------


def _files(run: _Run) -> None:
    repository, config = run.repository, run.repository.config
    if not config.declared:
        rule = RULES["config-missing"]
        run.findings.append(
            Finding(rule.id, CONFIG_FILE, "there is no tether.yaml", 0, rule.severity, rule.hint)
        )
    run.findings += _chart_files(
        run, layout.check(repository.files, repository.manifest_files, config)
    )
    rule = RULES["layout-symlink-outside"]
    run.findings += [
        Finding(
            rule.id,
            path,
            f"{path} is a symlink to {target}, outside the repository: lint does not read it, "
            "and a render refuses it",
            0,
            rule.severity,
            rule.hint,
        )
        for path, target in repository.escapes.items()
    ]
    run.findings += ownership.check_codeowners(*repository.codeowners(), config)
    scanned = 0
    for path in repository.files:
        text = repository.read(path)
        if text is not None:
            scanned += 1
            run.findings += secrets.scan(path, text)
    run.checked["files"] = scanned


# -- objects --------------------------------------------------------------------------------------


def _environment(unit_path: str, run: _Run) -> str:
    return _environment_of(place_of(f"{unit_path}/x"), run)


def _environment_of(place: Place, run: _Run) -> str:
    if place.environment:
        return place.environment
    cluster = run.repository.config.cluster(place.cluster) if place.cluster else None
    return cluster.environment if cluster else ""


def _build(run: _Run, unit_path: str) -> list[Manifest] | RenderError:
    settings = RenderSettings(kustomize=run.settings.kustomize, timeout=run.settings.render_timeout)
    try:
        return render(run.repository.root, unit_path, settings)
    except RenderError as error:
        return error


def _render_all(run: _Run, unit_paths: list[str]) -> list[tuple[str, list[Manifest]]]:
    """Render ``unit_paths`` (kustomize builds run in parallel); failures become findings."""
    with ThreadPoolExecutor(max_workers=RENDER_WORKERS) as pool:
        built = list(pool.map(lambda unit_path: _build(run, unit_path), unit_paths))
    rendered: list[tuple[str, list[Manifest]]] = []
    for unit_path, result in zip(unit_paths, built, strict=True):
        if isinstance(result, RenderError):
            rule = RULES["render-failed"]
            target = next(
                (
                    f"{unit_path}/{name}"
                    for name in KUSTOMIZATION_FILES
                    if f"{unit_path}/{name}" in run.repository.files
                ),
                f"{unit_path}/",
            )
            run.findings.append(
                Finding(
                    rule.id, target, str(result), 0, rule.severity, rule.hint, subject=unit_path
                )
            )
            continue
        located = [locate.locate(manifest, unit_path, run.repository) for manifest in result]
        rendered.append((unit_path, located))
    return rendered


def _objects(run: _Run) -> tuple[list[Unit], list[Unit]]:
    """Render every unit and run the object checks; (units checked, every unit rendered)."""
    config = run.repository.config
    wanted = set(run.settings.environments)
    unit_paths = [
        unit_path
        for unit_path in layout.units(run.repository.files)
        if not wanted or _environment(unit_path, run) in (*wanted, "")
    ]
    rendered = [
        Unit(unit_path, place_of(f"{unit_path}/x"), tuple(manifests))
        for unit_path, manifests in _render_all(run, unit_paths)
    ]
    run.checked["directories rendered"] = len(rendered)
    checked: list[Unit] = []
    for unit in rendered:
        if unit.place.layer == CLUSTERS:
            own = tuple(m for m in unit.manifests if under(m.source.path, unit.path))
            checked.append(Unit(unit.path, unit.place, own))
        else:
            checked.append(unit)
    charted = _render_charts(run, checked)
    chart_units = [result.unit for result in charted if result.unit is not None]
    checked += chart_units
    rendered += chart_units
    chart_of = {id(result.unit): result for result in charted}
    run.checked["objects"] = sum(len(unit.manifests) for unit in checked)
    every = [m for unit in rendered for m in unit.manifests]
    custom = tenancy.cluster_scoped(every)
    for unit in checked:
        found = naming.check(unit, config)
        environment = _environment_of(unit.place, run)
        if environment:
            found += images.check(unit.manifests, environment, config.image_rules(environment))
        found += tenancy.check_namespaces(unit, config, custom)
        chart = chart_of.get(id(unit))
        if chart is not None:
            found = [chart.refine(f, run.repository) for f in found]
        run.findings += [locate.refine(f, unit.path, run.repository) for f in found]
    owned = [unit for unit in checked if unit.place.layer != CLUSTERS]
    run.findings += tenancy.check_duplicates(owned, config.environments, custom)
    return checked, rendered


def _render_charts(run: _Run, units: list[Unit]) -> list[charts.ChartLint]:
    """Render the chart of every App with ``spec.chart`` the units define (in parallel, like
    kustomize builds); their findings are kept, what rendered is returned to be checked."""
    apps = [(app, unit) for unit in units for app in charts.chart_apps(unit)]
    with ThreadPoolExecutor(max_workers=RENDER_WORKERS) as pool:
        results = list(
            pool.map(
                lambda pair: charts.lint_chart(pair[0], pair[1], run.repository, run.settings),
                apps,
            )
        )
    for result in results:
        run.findings += result.findings
    run.checked["charts rendered"] = sum(result.unit is not None for result in results)
    return results


def _chart_files(run: _Run, findings: list[Finding]) -> list[Finding]:
    """``findings`` without layout-misplaced ones about a chart's own files (its templates are
    not manifests until helm renders them)."""
    directories = charts.chart_directories(run.repository)
    return [
        finding
        for finding in findings
        if finding.rule != "layout-misplaced"
        or not any(under(finding.path, directory) for directory in directories)
    ]


# -- schemas --------------------------------------------------------------------------------------


def _analysis_templates_checked(run: _Run, checked: list[Unit]) -> list[Unit]:
    """Check the AnalysisTemplates as a rollout reads them (they are never applied, so no
    schema or CRD applies); the units without them, for the schema checks."""
    rule = RULES["analysis-template-invalid"]
    kept: list[Unit] = []
    for unit in checked:
        for manifest in unit.manifests:
            if not is_template(manifest.body):
                continue
            try:
                read_template(manifest.body, manifest.source.path).check()
            except AnalysisError as error:
                run.findings.append(
                    Finding(
                        rule.id,
                        manifest.source.path,
                        str(error),
                        manifest.source.line,
                        rule.severity,
                        rule.hint,
                        subject=str(manifest.ref),
                    )
                )
        others = tuple(m for m in unit.manifests if not is_template(m.body))
        kept.append(replace(unit, manifests=others) if len(others) < len(unit.manifests) else unit)
    return kept


def _validate(run: _Run, checked: list[Unit], rendered: list[Unit]) -> None:
    settings = run.settings
    checked = _analysis_templates_checked(run, checked)
    if settings.cluster is not None:
        run.findings += dryrun.check(checked, run.repository.config, settings.cluster)
        return
    schema_set = None
    if settings.schema_cache is not None and settings.kubernetes_version:
        schema_set = schemas.load(settings.schema_cache, settings.kubernetes_version)
    if schema_set is None:
        rule = RULES["schema-unavailable"]
        version = settings.kubernetes_version or "the pinned version"
        run.findings.append(
            Finding(
                rule.id,
                run.config_path,
                f"objects were not validated: no schemas cached for Kubernetes {version}",
                0,
                rule.severity,
                rule.hint,
            )
        )
        return
    schema_set.add_crds(m for unit in rendered for m in unit.manifests)
    unknown: set[str] = set()
    validated = 0
    for unit in checked:
        for manifest in unit.manifests:
            problems = schema_set.validate(manifest)
            if problems is None:
                key = f"{manifest.api_version} {manifest.kind}"
                if key not in unknown:
                    unknown.add(key)
                    rule = RULES["schema-unknown-kind"]
                    run.findings.append(
                        Finding(
                            rule.id,
                            manifest.source.path,
                            f"{manifest.ref}: no schema for apiVersion {manifest.api_version!r} "
                            f"kind {manifest.kind!r} (Kubernetes {schema_set.version}); not "
                            "validated",
                            manifest.source.line,
                            rule.severity,
                            rule.hint,
                            subject=key,
                        )
                    )
                continue
            validated += 1
            rule = RULES["schema-invalid"]
            for where, problem in problems:
                finding = Finding(
                    rule.id,
                    manifest.source.path,
                    f"{manifest.ref}: {where}: {problem}"
                    if where
                    else f"{manifest.ref}: {problem}",
                    manifest.source.line,
                    rule.severity,
                    rule.hint,
                    subject=str(manifest.ref),
                    field=where,
                )
                run.findings.append(locate.refine(finding, unit.path, run.repository))
    run.checked["objects validated"] = validated
