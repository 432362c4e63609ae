"""``tether init`` and ``tether lint``: laying out a GitOps repository, and checking one.

Exit codes of ``lint``: 0 clean (notes allowed), 1 findings (errors or warnings), 2 error
(tether.yaml unreadable, unknown ref, kustomize or the cluster unavailable).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from tether.cli import output
from tether.errors import TetherError

RuleOutput = ("text", "json", "sarif", "junit")


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _version() -> str:
    try:
        return metadata.version("tether")
    except metadata.PackageNotFoundError:
        return ""


def _fail(error: Exception, json_output: bool = False) -> typer.Exit:
    if json_output:
        output.print_json({"error": str(error)})
    else:
        output.print_error(error)
    return typer.Exit(2)


def init(
    directory: Annotated[
        Path, typer.Argument(help="Where to create the repository layout.", metavar="DIR")
    ] = Path("."),
    apps: Annotated[str, typer.Option("--apps", help="Apps to scaffold, comma-separated.")] = "",
    envs: Annotated[
        str, typer.Option("--envs", help="Environments in promotion order, comma-separated.")
    ] = "dev,stage,prod",
    clusters: Annotated[
        str,
        typer.Option(
            "--clusters",
            help="Clusters, comma-separated, each NAME or NAME=ENV (a bare name runs the "
            "environment it names, else the environments in order). Default: one per environment.",
        ),
    ] = "",
    teams: Annotated[
        list[str] | None,
        typer.Option(
            "--team",
            help="A team and the paths it owns: NAME=glob[,glob…]; repeat for more teams. "
            "Default: 'platform' owns everything, each app's team owns apps/<app>/.",
        ),
    ] = None,
    org: Annotated[
        str, typer.Option("--org", help="GitHub/GitLab org: CODEOWNERS handles become @ORG/<team>.")
    ] = "",
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    codeowners_only: Annotated[
        bool,
        typer.Option(
            "--codeowners-only", help="Only regenerate CODEOWNERS from the existing tether.yaml."
        ),
    ] = False,
) -> None:
    """Lay out a GitOps repository: platform/, apps/, clusters/, tether.yaml and CODEOWNERS."""
    from tether.governance import scaffold

    try:
        if codeowners_only:
            written = scaffold.regenerate_codeowners(directory)
            output.err.print(f"wrote {directory / written} from tether.yaml")
            raise typer.Exit(0)
        environments = _split(envs)
        spec = scaffold.InitSpec(
            apps=_split(apps),
            environments=environments,
            clusters=scaffold.parse_clusters(list(_split(clusters)), environments),
            teams=tuple(scaffold.parse_team(team) for team in teams or []),
            org=org,
        )
        files = scaffold.plan(spec)
        written_files = scaffold.write(directory, files, force=force)
    except TetherError as error:
        raise _fail(error) from None
    for path in written_files:
        sys.stdout.write(f"created {directory / path}\n")
    config = scaffold.configuration(spec)
    for cluster in config.clusters:
        output.err.print(f"cluster {cluster.name} runs {cluster.environment}")
    output.err.print(
        f"{len(written_files)} files written. Next: edit tether.yaml (owners, namespaces), "
        f"then run `tether lint {directory}`."
    )


def lint(
    path: Annotated[
        Path, typer.Argument(help="The repository to check (its root).", metavar="PATH")
    ] = Path("."),
    output_format: Annotated[
        str, typer.Option("-o", "--output", help="text, json, sarif (SARIF 2.1.0) or junit.")
    ] = "text",
    changed_since: Annotated[
        str | None,
        typer.Option(
            "--changed-since",
            help="Also judge the change since REF (merge base with HEAD up to the work tree): "
            "layers, environments, teams, and who must review it.",
            metavar="REF",
        ),
    ] = None,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="Validate with a server-side dry-run against the current kubeconfig instead "
            "of the offline schemas.",
        ),
    ] = False,
    environments: Annotated[
        list[str] | None,
        typer.Option("--env", help="Check only this environment's overlays (repeatable)."),
    ] = None,
    update_schemas: Annotated[
        bool,
        typer.Option(
            "--update-schemas",
            help="First fetch the OpenAPI schemas from a control plane (the dev cluster, started "
            "for the purpose if needed, or --kubeconfig) into the cache.",
        ),
    ] = False,
    schemas_dir: Annotated[
        Path | None,
        typer.Option(
            "--schemas-dir",
            envvar="TETHER_SCHEMAS_DIR",
            help="Schema cache (default: ~/.cache/tether/schemas).",
        ),
    ] = None,
    kubernetes_version: Annotated[
        str | None,
        typer.Option(
            "--kubernetes-version",
            help="Validate against this version's cached schemas (default: the pinned version).",
        ),
    ] = None,
    kubeconfig_path: Annotated[
        str | None, typer.Option("--kubeconfig", help="kubeconfig for --cluster/--update-schemas.")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context.")] = None,
) -> None:
    """Check a GitOps repository: layout, names, renders, schemas, ownership, secrets, images.

    Exit codes: 0 clean, 1 findings, 2 error.
    """
    if output_format not in RuleOutput:
        raise typer.BadParameter("use -o text, json, sarif or junit", param_hint="-o")
    json_output = output_format == "json"
    from tether.cli.devcluster import resolve_helm, resolve_kustomize
    from tether.core.paths import cache_root
    from tether.devcluster.versions import KUBERNETES
    from tether.governance import LintSettings
    from tether.governance import lint as run_lint
    from tether.policy.report import render

    cache = schemas_dir or cache_root() / "schemas"
    try:
        if update_schemas:
            _update_schemas(cache, kubeconfig_path, context)
        connection = None
        if cluster:
            from tether.cli.connection import connect

            connection = connect(kubeconfig_path, context)
        settings = LintSettings(
            kustomize=resolve_kustomize(),
            helm=resolve_helm() if _holds_charts(path) else None,
            schema_cache=cache,
            kubernetes_version=kubernetes_version or KUBERNETES,
            cluster=connection,
            changed_since=changed_since,
            environments=tuple(environments or ()),
        )
        report = run_lint(path, settings)
    except TetherError as error:
        raise _fail(error, json_output) from None
    sys.stdout.write(render(report, output_format, _version()))
    raise typer.Exit(report.exit_code)


def _holds_charts(root: Path) -> bool:
    """Whether the repository has a Helm chart (then helm is needed, and built if missing)."""
    return root.is_dir() and any(".git" not in found.parts for found in root.rglob("Chart.yaml"))


def _update_schemas(cache: Path, kubeconfig_path: str | None, context: str | None) -> None:
    from tether.cluster import kubeconfig
    from tether.devcluster.controlplane import DevCluster, running
    from tether.devcluster.provision import TextLog
    from tether.governance import schemas

    if kubeconfig_path or context:
        connection = kubeconfig.load(kubeconfig_path, context)
        version, directory, kinds = schemas.update(connection, cache)
    else:
        dev = DevCluster()
        if dev.status()["ready"]:
            version, directory, kinds = schemas.update(kubeconfig.load(dev.kubeconfig_path), cache)
        else:
            import tempfile

            output.err.print("starting a temporary dev cluster to read its OpenAPI schemas")
            with (
                tempfile.TemporaryDirectory(prefix="tether-schemas-") as scratch,
                running("schemas", Path(scratch), TextLog()) as temporary,
            ):
                connection = kubeconfig.load(temporary.kubeconfig_path)
                version, directory, kinds = schemas.update(connection, cache)
    output.err.print(f"cached the schemas of {kinds} kinds of Kubernetes {version} in {directory}")


def register(app: typer.Typer) -> None:
    """Add ``init`` and ``lint`` to the ``tether`` command."""
    app.command(
        epilog="Examples:\n\n  tether init gitops --apps web,api --envs dev,stage,prod "
        "--clusters dev-1=dev,prod-eu=prod --org acme\n\n"
        "  tether init gitops --codeowners-only"
    )(init)
    app.command(
        epilog="Exit codes: 0 clean, 1 findings, 2 error.\n\nExamples:\n\n"
        "  tether lint .\n\n"
        "  tether lint . --changed-since origin/main -o sarif > tether.sarif\n\n"
        "  tether lint . --cluster --kubeconfig ~/.kube/config"
    )(lint)
