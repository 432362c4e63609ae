"""The ``tether`` command: sync, diff, status, history and the local dev cluster.

Exit codes everywhere: 0 ok (or in sync), 1 differences found, 2 error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from tether.cli import output
from tether.cli.agent import commands as agent_commands
from tether.cli.connection import connect
from tether.cli.devcluster import dev_cluster_app, resolve_helm, resolve_kustomize
from tether.cli.governance import register as register_governance
from tether.cli.oci import AllowDigestOpt, OciOpt, PlainHttpOpt, push_app
from tether.cli.parsing import parse_duration
from tether.cli.rollback import commands as rollback_commands
from tether.cli.rollout import rollout_app
from tether.cli.secrets import secrets_app
from tether.cluster.client import DEFAULT_CONCURRENCY
from tether.core.actor import default_actor
from tether.core.inventory import app_identity
from tether.errors import TetherError

app = typer.Typer(
    name="tether",
    help="Tether: a GitOps engine for Kubernetes. Git holds the desired state; Tether renders it, "
    "shows what would change, applies it with server-side apply, prunes what Git no longer has, "
    "waits for health and records every sync.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.add_typer(dev_cluster_app, name="dev-cluster")
app.add_typer(secrets_app, name="secrets")
app.add_typer(agent_commands)
app.add_typer(push_app, name="push")
app.add_typer(rollout_app, name="rollout")
app.add_typer(rollback_commands)
register_governance(app)

KubeconfigOpt = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        help="Path to a kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the running dev cluster).",
    ),
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use.")]
SourceOpt = Annotated[
    str,
    typer.Option(
        "--source",
        help="Git URL (https, ssh, file://) or local path of the repository (optional for a "
        "chart from a Helm repository: then --values files are local).",
    ),
]
ChartOpt = Annotated[
    str,
    typer.Option(
        "--chart",
        help="Render a Helm chart: its path in the repository, REPO_URL/CHART, or CHART with --repo.",
    ),
]
RepoOpt = Annotated[
    str, typer.Option("--repo", help="URL of the Helm repository (index.yaml) --chart is in.")
]
ChartVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--version",
        help="Semver range of the chart version, e.g. 1.4.2, ^1.4, '>=1.2 <2' (default: highest).",
    ),
]
ValuesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--values",
        "-f",
        help="Values file in the repository (repeatable, later wins; may be SOPS-encrypted).",
    ),
]
ReleaseOpt = Annotated[
    str, typer.Option("--release", help="Helm release name (default: the app's name).")
]
RepoUserOpt = Annotated[
    str, typer.Option("--repo-username", help="User for the Helm repository or OCI registry.")
]
RepoPasswordOpt = Annotated[
    str,
    typer.Option(
        "--repo-password-file",
        help="File with the Helm repository's or OCI registry's password, read per fetch.",
    ),
]
PatchOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--post-render-patch",
        help="Strategic-merge patch file in the repository applied to the rendered chart "
        "(repeatable).",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="A chart value in helm's --set syntax (a.b=1,c[0]=x), given to helm as it is, on "
        "top of every other value (repeatable). Never printed.",
    ),
]
SetStringOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set-string",
        help="Like --set, every value a string (helm's --set-string).",
    ),
]
RepoCaOpt = Annotated[
    str, typer.Option("--repo-ca-file", help="CA bundle (PEM) for an https Helm repository.")
]
TokenFileOpt = Annotated[
    str,
    typer.Option(
        "--git-token-file", help="File with an https token for the repository, read on every fetch."
    ),
]
RefOpt = Annotated[
    str | None,
    typer.Option("--ref", help="Branch, tag or commit (default: the remote's default branch)."),
]
PathOpt = Annotated[str, typer.Option("--path", help="Directory inside the repository to render.")]
AppOpt = Annotated[
    str,
    typer.Option(
        "--app",
        help="The app: NAME (its namespace is -n) or NAMESPACE/NAME, like the App NAME in "
        "NAMESPACE that the agent would run. The inventory and audit key.",
    ),
]
NamespaceOpt = Annotated[
    str, typer.Option("-n", "--namespace", help="Namespace for namespaced objects that name none.")
]
AppNamespaceOpt = Annotated[
    str,
    typer.Option(
        "-n", "--namespace", help="The app's namespace (the -n it was synced with, or its App's)."
    ),
]
OutputOpt = Annotated[str, typer.Option("-o", "--output", help="Output format: text or json.")]
TeamOpt = Annotated[
    str,
    typer.Option(
        "--team",
        help="Enforce this team's limits from the repository's tether.yaml (paths, namespaces, kinds).",
    ),
]
ImpersonateOpt = Annotated[
    str,
    typer.Option(
        "--as-service-account",
        help="NAMESPACE/NAME: apply as this ServiceAccount so the API server's RBAC decides.",
    ),
]
DecryptionSecretOpt = Annotated[
    str,
    typer.Option(
        "--decryption-secret",
        help="NAMESPACE/NAME of a Secret holding age identities for SOPS-encrypted files.",
    ),
]
AgeKeyFileOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--age-key-file",
        help="File with age identities (repeatable); $SOPS_AGE_KEY(_FILE) also work.",
    ),
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        min=1,
        max=256,
        help="API requests in flight at once (raise for remote clusters).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="TETHER_DB",
        help="Audit database: a SQLite path or postgresql://… (default: ~/.local/state/tether/audit.db).",
    ),
]


def fail(error: Exception, json_output: bool = False) -> typer.Exit:
    if json_output:
        output.print_json({"error": str(error)})
    else:
        output.print_error(error)
    return typer.Exit(2)


def identity_of(app_name: str, namespace: str) -> str:
    """``web`` with ``-n team-a``, or ``team-a/web``: the app ``team-a.web`` either way."""
    owner, _, name = app_name.rpartition("/")
    return app_identity(name, owner or namespace)


def require_app(app_name: str) -> None:
    if not app_name:
        raise typer.BadParameter("--app is required", param_hint="--app")


def check_output(value: str) -> bool:
    if value not in ("text", "json"):
        raise typer.BadParameter("use -o text or -o json")
    return value == "json"


@app.command(
    epilog="Examples:\n\n  tether sync --source ./gitops --path apps/web --app web -n web --prune\n\n"
    "  tether sync --source https://git.example.com/org/gitops.git --ref v1.4.0 --path apps/web --app web -o json\n\n"
    "  tether sync --chart https://charts.example.com/ingress --version '^4.11' --source ./gitops "
    "--values ingress/prod.yaml --app ingress -n ingress --prune"
)
def sync(
    source: SourceOpt = "",
    path: PathOpt = ".",
    app_name: AppOpt = "",
    ref: RefOpt = None,
    git_token_file: TokenFileOpt = "",
    namespace: NamespaceOpt = "default",
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Delete objects this app created that Git no longer has."),
    ] = False,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Allow a render with no objects (with --prune: delete everything).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and dry-run only; write nothing.")
    ] = False,
    timeout: Annotated[
        str,
        typer.Option("--timeout", help="How long to wait for health, e.g. 90s, 5m; 0 to not wait."),
    ] = "5m",
    health_grace: Annotated[
        str,
        typer.Option(
            "--health-grace",
            help="How long a controller gets to write the first status of an object it was "
            "applied for (an App's spec.health.gracePeriod), e.g. 30s; 0 to judge at once.",
        ),
    ] = "30s",
    output_format: OutputOpt = "text",
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="List unchanged objects too.")
    ] = False,
    db: DbOpt = None,
    concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
    team: TeamOpt = "",
    as_service_account: ImpersonateOpt = "",
    decryption_secret: DecryptionSecretOpt = "",
    age_key_file: AgeKeyFileOpt = None,
    kubeconfig_path: KubeconfigOpt = None,
    context: ContextOpt = None,
    chart: ChartOpt = "",
    repo: RepoOpt = "",
    version: ChartVersionOpt = None,
    values: ValuesOpt = None,
    release: ReleaseOpt = "",
    repo_username: RepoUserOpt = "",
    repo_password_file: RepoPasswordOpt = "",
    repo_ca_file: RepoCaOpt = "",
    post_render_patch: PatchOpt = None,
    oci: OciOpt = "",
    plain_http: PlainHttpOpt = False,
    allow_digest: AllowDigestOpt = None,
    set_values: SetOpt = None,
    set_strings: SetStringOpt = None,
) -> None:
    """Render a path of a Git repository (or a Helm chart, or an OCI artifact) and bring the
    cluster to it (one reconcile pass)."""
    from tether.audit import AuditStore
    from tether.cli.sourceoptions import access_settings, source_of_options
    from tether.cli.templates import TemplatesSetAside
    from tether.reconcile.options import SyncOptions
    from tether.reconcile.run import run_sync

    json_output = check_output(output_format)
    require_app(app_name)
    spec = source_of_options(
        (source, path, ref, git_token_file),
        (chart, repo, version, values, release, post_render_patch),
        (repo_username, repo_password_file, repo_ca_file),
        (oci, plain_http, allow_digest),
        (set_values, set_strings),
    )
    try:
        connection = connect(kubeconfig_path, context)
        options = SyncOptions(
            app=identity_of(app_name, namespace),
            namespace=namespace,
            prune=prune,
            allow_empty=allow_empty,
            dry_run=dry_run,
            timeout=parse_duration(timeout),
            health_grace=parse_duration(health_grace),
            **access_settings(
                concurrency, team, as_service_account, decryption_secret, age_key_file
            ),
        )
        audit = AuditStore(db)
        templates = TemplatesSetAside(connection)
        try:
            with output.progress(f"syncing {app_name}", enabled=not json_output):
                report = asyncio.run(
                    run_sync(
                        spec,
                        options,
                        connection,
                        audit=audit,
                        actor=default_actor(),
                        kustomize=resolve_kustomize(),
                        helm=resolve_helm() if spec.chart else None,
                        shape=templates,
                    )
                )
        finally:
            audit.close()
    except TetherError as error:
        raise fail(error, json_output) from None
    if json_output:
        output.print_json({**output.sync_to_dict(report), "notApplied": templates.entries()})
    else:
        output.print_sync(report, verbose)
        output.print_note(templates.note())
    if report.audit_error:
        output.print_error(f"the sync ran but was not recorded: {report.audit_error}")
    raise typer.Exit(0 if report.succeeded and not report.audit_error else 2)


@app.command(
    epilog="Exit codes: 0 in sync, 1 differences, 2 error.\n\nExample:\n\n"
    "  tether diff --source ./gitops --path apps/web --app web -n web --prune"
)
def diff(
    source: SourceOpt = "",
    path: PathOpt = ".",
    app_name: AppOpt = "",
    ref: RefOpt = None,
    git_token_file: TokenFileOpt = "",
    namespace: NamespaceOpt = "default",
    prune: Annotated[
        bool, typer.Option("--prune", help="Also show objects a sync with --prune would delete.")
    ] = False,
    output_format: OutputOpt = "text",
    concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
    team: TeamOpt = "",
    as_service_account: ImpersonateOpt = "",
    decryption_secret: DecryptionSecretOpt = "",
    age_key_file: AgeKeyFileOpt = None,
    kubeconfig_path: KubeconfigOpt = None,
    context: ContextOpt = None,
    chart: ChartOpt = "",
    repo: RepoOpt = "",
    version: ChartVersionOpt = None,
    values: ValuesOpt = None,
    release: ReleaseOpt = "",
    repo_username: RepoUserOpt = "",
    repo_password_file: RepoPasswordOpt = "",
    repo_ca_file: RepoCaOpt = "",
    post_render_patch: PatchOpt = None,
    oci: OciOpt = "",
    plain_http: PlainHttpOpt = False,
    allow_digest: AllowDigestOpt = None,
    set_values: SetOpt = None,
    set_strings: SetStringOpt = None,
) -> None:
    """Show what a sync would change, as a unified diff of live vs desired (Secret values masked)."""
    from tether.cli.sourceoptions import access_settings, source_of_options
    from tether.cli.templates import TemplatesSetAside
    from tether.reconcile.options import SyncOptions
    from tether.reconcile.run import run_diff

    json_output = check_output(output_format)
    require_app(app_name)
    spec = source_of_options(
        (source, path, ref, git_token_file),
        (chart, repo, version, values, release, post_render_patch),
        (repo_username, repo_password_file, repo_ca_file),
        (oci, plain_http, allow_digest),
        (set_values, set_strings),
    )
    try:
        connection = connect(kubeconfig_path, context)
        options = SyncOptions(
            app=identity_of(app_name, namespace),
            namespace=namespace,
            prune=prune,
            dry_run=True,
            **access_settings(
                concurrency, team, as_service_account, decryption_secret, age_key_file
            ),
        )
        templates = TemplatesSetAside(connection)
        with output.progress(f"comparing {app_name} with the cluster", enabled=not json_output):
            report = asyncio.run(
                run_diff(
                    spec,
                    options,
                    connection,
                    kustomize=resolve_kustomize(),
                    helm=resolve_helm() if spec.chart else None,
                    shape=templates,
                )
            )
    except TetherError as error:
        raise fail(error, json_output) from None
    if json_output:
        output.print_json(
            {
                "inSync": report.in_sync,
                "revision": report.revision.to_dict() if report.revision else None,
                "objects": [
                    {
                        "kind": d.ref.kind,
                        "namespace": d.ref.namespace,
                        "name": d.ref.name,
                        "action": d.action,
                        "diff": d.diff,
                    }
                    for d in report.diffs
                ],
                "notApplied": templates.entries(),
            }
        )
    else:
        output.print_diff(report)
        output.print_note(templates.note())
    raise typer.Exit(0 if report.in_sync else 1)


@app.command(epilog="Example:\n\n  tether status web -n team-a")
def status(
    app_name: Annotated[
        str, typer.Argument(help="The app: NAME (with -n) or NAMESPACE/NAME.", metavar="APP")
    ],
    namespace: AppNamespaceOpt = "default",
    output_format: OutputOpt = "text",
    kubeconfig_path: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """The objects an app manages, with their health."""
    from tether.cli.appstatus import print_app_status, read_app_status

    json_output = check_output(output_format)
    try:
        connection = connect(kubeconfig_path, context)
        identity = identity_of(app_name, namespace)
        report = read_app_status(identity, connection)
    except TetherError as error:
        raise fail(error, json_output) from None
    if json_output:
        output.print_json({"app": app_name, **report.to_dict()})
    else:
        output.out.print(
            output.styled(
                "[bold]{}[/]: {}, {} objects, last revision {}",
                app_name,
                report.health.status.value,
                len(report.health.objects),
                report.revision or "-",
            )
        )
        print_app_status(report)
    raise typer.Exit(0)


@app.command(epilog="Example:\n\n  tether history web -n team-a --limit 5")
def history(
    app_name: Annotated[
        str, typer.Argument(help="The app: NAME (with -n) or NAMESPACE/NAME.", metavar="APP")
    ],
    namespace: AppNamespaceOpt = "default",
    limit: Annotated[int, typer.Option("--limit", help="How many records, newest first.")] = 20,
    output_format: OutputOpt = "text",
    db: DbOpt = None,
) -> None:
    """The audit trail of an app's syncs: when, which commit, what changed, who ran it."""
    from tether.audit import AuditStore

    json_output = check_output(output_format)
    try:
        audit = AuditStore(db)
        try:
            records = audit.history(identity_of(app_name, namespace), limit)
        finally:
            audit.close()
    except TetherError as error:
        raise fail(error, json_output) from None
    if json_output:
        output.print_json([output.record_to_dict(r) for r in records])
    elif not records:
        output.out.print(f"no syncs recorded for {app_name!r}")
    else:
        output.out.print(output.history_table(records))


@app.command(epilog="Example:\n\n  tether demo")
def demo(
    name: Annotated[str, typer.Option("--name", help="Name of the dev cluster to use.")] = "tether",
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig",
            help="Use this (kwok) cluster instead of starting the dev cluster; nothing else may "
            "run an agent on it.",
        ),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Where the demo keeps its Git repository, agent log and audit DB "
            "(default: ~/.cache/tether/demo).",
        ),
    ] = None,
) -> None:
    """Run the agent's loop on a local cluster: a push applied, a hand edit undone, its events."""
    from tether.cli.demo import run_demo

    try:
        code = run_demo(name, kubeconfig, workdir)
    except TetherError as error:
        raise fail(error) from None
    raise typer.Exit(code)


if __name__ == "__main__":
    app()
