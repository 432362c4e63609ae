"""Agent commands: run the agent, install and bootstrap it, and look at and steer what it does
(``get``, ``reconcile``, ``suspend``, ``resume``, ``events``)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from tether.agent import crds, install
from tether.agent.annotations import REQUESTED_ANNOTATION
from tether.agent.conditions import now
from tether.agent.settings import DEFAULT_SERVICE_ACCOUNT
from tether.agent.webhooks import refuse_empty
from tether.cli import output
from tether.cli.connection import connect
from tether.cli.devcluster import resolve_kustomize
from tether.cluster.client import KubeClient
from tether.core.kubeyaml import dump_all
from tether.devcluster.provision import find_binary
from tether.errors import TetherError

T = TypeVar("T")
KubeconfigOpt = Annotated[
    str | None, typer.Option("--kubeconfig", help="Path to a kubeconfig file.")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context to use.")]
NamespaceOpt = Annotated[
    str, typer.Option("-n", "--namespace", help="Namespace of the App objects.")
]
commands = typer.Typer()
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
get_app = typer.Typer(help="Show Apps the agent manages.", no_args_is_help=True)


def _run(
    kubeconfig: str | None, context: str | None, work: Callable[[KubeClient], Awaitable[T]]
) -> T:
    """Run ``work`` with a client for the chosen cluster; TetherErrors become exit code 2."""

    async def go() -> T:
        async with KubeClient(connect(kubeconfig, context)) as client:
            return await work(client)

    try:
        return asyncio.run(go())
    except TetherError as error:
        output.print_error(error)
        raise typer.Exit(2) from None


@commands.command(
    epilog="Example:\n\n  tether agent --namespace team-a --webhook-secret-file /etc/tether/webhook"
)
def agent(
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace",
            help="Watch Apps and GitSources in this namespace only (default: all).",
        ),
    ] = "",
    lease_namespace: Annotated[
        str, typer.Option("--lease-namespace", help="Namespace of the leader-election Lease.")
    ] = install.NAMESPACE,
    identity: Annotated[
        str,
        typer.Option("--identity", help="This replica's name in the Lease (default: host-pid)."),
    ] = "",
    listen: Annotated[
        str,
        typer.Option("--listen", help="Address for /metrics, /healthz, /readyz and /hooks/*."),
    ] = "127.0.0.1:9440",
    webhook_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--webhook-secret-file",
            help="File with the shared secret push webhooks are signed with.",
        ),
    ] = None,
    shard: Annotated[
        str,
        typer.Option("--shard", help="I/N: handle the I-th of N shards of the apps (0-based)."),
    ] = "0/1",
    max_concurrent: Annotated[
        int, typer.Option("--max-concurrent", min=1, help="Apps reconciled at once.")
    ] = 4,
    lease_duration: Annotated[
        float,
        typer.Option(
            "--lease-duration",
            min=1.0,
            help="Seconds a standby waits, without seeing the Lease renewed, before taking over. "
            "The leader steps down after two thirds of it without a renewal.",
        ),
    ] = 15.0,
    alert_queue_size: Annotated[
        int,
        typer.Option(
            "--alert-queue-size",
            min=1,
            help="Alerts waiting for delivery; more are dropped and counted while receivers lag.",
        ),
    ] = 1000,
    allow_local_sources: Annotated[
        bool,
        typer.Option(
            "--allow-local-sources",
            help="Let GitSources name local paths and file:// URLs (they read the agent's own "
            "disk: single-tenant installs and tests only).",
        ),
    ] = False,
    allow_loopback_http_credentials: Annotated[
        bool,
        typer.Option(
            "--allow-loopback-http-credentials",
            help="Let GitSource credentials go over plain http to a loopback address (tests).",
        ),
    ] = False,
    fetch_timeout: Annotated[
        float,
        typer.Option(
            "--fetch-timeout",
            min=1.0,
            help="Seconds one GitSource fetch may take before git is killed.",
        ),
    ] = 120.0,
    fetches_per_namespace: Annotated[
        int,
        typer.Option(
            "--fetches-per-namespace",
            min=1,
            help="GitSource fetches of one namespace running at once (other namespaces have "
            "their own).",
        ),
    ] = 2,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", envvar="TETHER_DB", help="Audit database (SQLite path or postgresql://…)."
        ),
    ] = None,
    default_service_account: Annotated[
        str,
        typer.Option(
            "--default-service-account",
            help="ServiceAccount, in the App's own namespace, that an App without a Project (or "
            "whose Project names none) is applied as. See docs/tenancy.md.",
        ),
    ] = DEFAULT_SERVICE_ACCOUNT,
    test_hold_rollbacks: Annotated[
        bool,
        typer.Option(
            "--test-hold-rollbacks",
            hidden=True,
            help="Tests only: a rollback a failed canary asks for is recorded and never run "
            "by this replica (so a test can kill it in between).",
        ),
    ] = False,
    test_crash_after_fast_restore: Annotated[
        bool,
        typer.Option(
            "--test-crash-after-fast-restore",
            hidden=True,
            help="Tests only: the agent kills itself right after a failed analysis' fast "
            "restore of stable, before the abort is recorded.",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Run the agent: keep every App equal to Git, correct drift, alert, record."""
    # The agent's stack (aiohttp, prometheus) is imported only when the agent runs, so that
    # one-shot commands such as `tether sync` start fast.
    from tether.agent.logs import configure as configure_logs
    from tether.agent.run import run_agent
    from tether.agent.settings import AgentSettings

    index, count = _shard(shard)
    address = _address(listen)
    secret = _webhook_secret(webhook_secret_file)
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise typer.BadParameter(
            f"{log_level!r}: use debug, info, warning or error", param_hint="--log-level"
        )
    configure_logs(log_level)
    settings = AgentSettings(
        identity=identity or f"{socket.gethostname()}-{os.getpid()}",
        namespace=namespace,
        lease_namespace=lease_namespace,
        shard=index,
        shards=count,
        max_concurrent=max_concurrent,
        kustomize=resolve_kustomize(),
        helm=find_binary("helm"),
        audit_url=db,
        alert_queue=alert_queue_size,
        allow_local_sources=allow_local_sources,
        loopback_http_credentials=allow_loopback_http_credentials,
        fetch_timeout=fetch_timeout,
        fetches_per_namespace=fetches_per_namespace,
        default_service_account=_account_name(default_service_account),
        test_hold_rollbacks=test_hold_rollbacks,
        test_crash_after_fast_restore=test_crash_after_fast_restore,
    )
    try:
        asyncio.run(
            run_agent(connect(kubeconfig, context), settings, address, secret, lease_duration)
        )
    except TetherError as error:
        output.print_error(error)
        raise typer.Exit(2) from None


def _shard(text: str) -> tuple[int, int]:
    """``I/N`` as (I, N), 0 <= I < N; a bad value is a usage error (exit 2)."""
    index, _, count = text.partition("/")
    try:
        parsed = int(index), int(count or 1)
    except ValueError:
        parsed = (-1, 0)
    if not 0 <= parsed[0] < parsed[1]:
        raise typer.BadParameter(
            f"{text!r}: use I/N with 0 <= I < N, e.g. 0/3", param_hint="--shard"
        )
    return parsed


def _address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``) as (host, port); a bad value is a usage error."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise typer.BadParameter(
            f"{text!r}: use HOST:PORT, e.g. 127.0.0.1:9440 or :9440", param_hint="--listen"
        )
    return host.strip("[]") or "127.0.0.1", int(port)


def _webhook_secret(path: Path | None) -> bytes | None:
    """The shared secret of push webhooks, read once; an unreadable or empty file is a usage
    error, never a webhook endpoint open to anyone."""
    if path is None:
        return None
    try:
        secret = path.read_bytes().strip()
    except OSError as error:
        raise typer.BadParameter(
            f"cannot read {path}: {error.strerror}", param_hint="--webhook-secret-file"
        ) from None
    try:
        return refuse_empty(secret, str(path))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--webhook-secret-file") from None


def _deployers(names: list[str] | None) -> list[str]:
    """The --deployer-name values, checked (default: the default ServiceAccount)."""
    return [_account_name(n, "--deployer-name") for n in names or [DEFAULT_SERVICE_ACCOUNT]]


def _account_name(name: str, flag: str = "--default-service-account") -> str:
    """A ServiceAccount name as given, or exit 2 naming the flag."""
    if not _DNS_LABEL.fullmatch(name):
        output.print_error(
            f"{flag} {name!r} is not a ServiceAccount name (lower-case letters, digits, '-', '.')"
        )
        raise typer.Exit(2)
    return name


DeployerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--deployer-name",
        help="A ServiceAccount name the agent may impersonate, in any namespace (repeat it; the "
        f"first is the agent's --default-service-account; default {DEFAULT_SERVICE_ACCOUNT}).",
    ),
]


@commands.command(
    name="install",
    epilog="Examples:\n\n  tether install --export > tether.yaml\n\n  tether install",
)
def install_cmd(
    export: Annotated[
        bool, typer.Option("--export", help="Print the manifests instead of applying them.")
    ] = False,
    image: Annotated[str, typer.Option("--image", help="Agent image.")] = install.IMAGE,
    deployer_name: DeployerOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """The agent's CRDs, namespace, ServiceAccount, RBAC and Deployment."""
    objects = install.manifests(image=image, deployers=_deployers(deployer_name))
    if export:
        print(dump_all(objects), end="")
        return
    changes = _run(kubeconfig, context, lambda client: _apply(client, objects, "tether-install"))
    output.out.print(f"installed: {changes}")


@commands.command(
    epilog="Example:\n\n  tether bootstrap --source https://git.example.com/org/platform.git --path clusters/prod-eu"
)
def bootstrap(
    source: Annotated[str, typer.Option("--source", help="Git URL of the platform repository.")],
    path: Annotated[
        str, typer.Option("--path", help="This cluster's directory, e.g. clusters/NAME.")
    ],
    ref: Annotated[str | None, typer.Option("--ref", help="Branch to follow.")] = None,
    image: Annotated[str, typer.Option("--image", help="Agent image.")] = install.IMAGE,
    deployer_name: DeployerOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Install the agent and create the root App for PATH: from then on its config lives in Git."""
    objects = install.manifests(image=image, deployers=_deployers(deployer_name))

    async def go(client: KubeClient) -> str:
        installed = await _apply(client, objects, "tether-install")
        client.forget_discovery()
        rooted = await _apply(
            client,
            install.root_objects(install.NAMESPACE, source, path, ref),
            "tether-bootstrap",
        )
        return f"{installed}; root App: {rooted}"

    output.out.print(f"bootstrapped: {_run(kubeconfig, context, go)}")


@get_app.command(name="apps", epilog="Example:\n\n  tether get apps -A")
def get_apps(
    namespace: NamespaceOpt = "default",
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces")] = False,
    output_format: Annotated[str, typer.Option("-o", "--output")] = "text",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Every App with sync, health, revision and last sync."""

    async def go(client: KubeClient) -> list[dict[str, Any]]:
        resource = await client.resource(crds.API_VERSION, "App")
        return await client.list(resource, "" if all_namespaces else namespace)

    items = _run(kubeconfig, context, go)
    rows = [_app_row(item) for item in items]
    if output_format == "json":
        output.print_json(rows)
        return
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in (
        "NAMESPACE",
        "NAME",
        "READY",
        "REASON",
        "HEALTH",
        "REVISION",
        "CHART",
        "LAST SYNC",
        "SUSPENDED",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["namespace"],
            row["name"],
            row["ready"],
            row["reason"],
            row["health"],
            _short_revision(row["revision"]),
            row["chart"],
            row["lastSync"],
            str(row["suspended"]).lower(),
        )
    output.out.print(table)


@get_app.command(name="app", epilog="Example:\n\n  tether get app web -n team-a")
def get_one(
    name: Annotated[str, typer.Argument(help="The App's name.")],
    namespace: NamespaceOpt = "default",
    output_format: Annotated[str, typer.Option("-o", "--output")] = "text",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """One App: its conditions and its objects with health and sync state."""
    from tether.cli.appstatus import print_app_status, read_app_status

    connection = connect(kubeconfig, context)
    try:
        report = read_app_status(f"{namespace}.{name}", connection)
    except TetherError as error:
        output.print_error(error)
        raise typer.Exit(2) from None
    delivery = _run(kubeconfig, context, lambda client: _delivery_status(client, namespace, name))
    if output_format == "json":
        output.print_json(
            {"namespace": namespace, "name": name, **report.to_dict(), "delivery": delivery}
        )
        return
    output.out.print(
        output.styled(
            "[bold]{}/{}[/]: {} at {}",
            namespace,
            name,
            report.health.status.value,
            _short_revision(report.revision) or "-",
        )
    )
    print_app_status(report)
    if delivery:
        output.out.print(output.styled("[bold]rollouts[/]"))
        output.out.print(output.rollout_table(delivery))


async def _delivery_status(client: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    """``status.delivery`` of the App (empty when it has none, or is not there)."""
    found = await client.get(await client.resource(crds.API_VERSION, "App"), namespace, name)
    return dict(((found or {}).get("status") or {}).get("delivery") or {})


@commands.command(
    name="reconcile", epilog="Example:\n\n  tether reconcile app web -n team-a --with-source"
)
def reconcile_cmd(
    what: Annotated[str, typer.Argument(help="Always 'app'.")],
    name: Annotated[str, typer.Argument(help="The App's name.")],
    namespace: NamespaceOpt = "default",
    with_source: Annotated[
        bool, typer.Option("--with-source", help="Fetch its GitSource first.")
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Ask the agent to reconcile an App now."""
    _only_app(what)

    async def go(client: KubeClient) -> None:
        stamp = {"metadata": {"annotations": {REQUESTED_ANNOTATION: now()}}}
        apps = await client.resource(crds.API_VERSION, "App")
        app_obj = await client.merge_patch(apps, namespace, name, stamp)
        if with_source:
            source_ref = app_obj["spec"]["sourceRef"]
            kind = source_ref.get("kind") or "GitSource"
            sources = await client.resource(crds.API_VERSION, kind)
            await client.merge_patch(sources, namespace, source_ref["name"], stamp)

    _run(kubeconfig, context, go)
    output.out.print(f"reconcile of {namespace}/{name} requested")


def suspend_or_resume(suspend: bool) -> Callable[..., None]:
    def command(
        what: Annotated[str, typer.Argument(help="Always 'app'.")],
        name: Annotated[str, typer.Argument(help="The App's name.")],
        namespace: NamespaceOpt = "default",
        kubeconfig: KubeconfigOpt = None,
        context: ContextOpt = None,
    ) -> None:
        _only_app(what)

        async def go(client: KubeClient) -> None:
            apps = await client.resource(crds.API_VERSION, "App")
            await client.merge_patch(apps, namespace, name, {"spec": {"suspend": suspend}})

        _run(kubeconfig, context, go)
        output.out.print(f"{namespace}/{name} {'suspended' if suspend else 'resumed'}")

    command.__doc__ = (
        "Stop reconciling an App (drift is still reported)."
        if suspend
        else "Reconcile a suspended App again."
    )
    return command


commands.command(name="suspend", epilog="Example:\n\n  tether suspend app web -n team-a")(
    suspend_or_resume(True)
)
commands.command(name="resume", epilog="Example:\n\n  tether resume app web -n team-a")(
    suspend_or_resume(False)
)


@commands.command(epilog="Example:\n\n  tether events --for app/web -n team-a")
def events(
    for_object: Annotated[str, typer.Option("--for", help="Only events of app/NAME.")] = "",
    namespace: NamespaceOpt = "default",
    output_format: Annotated[str, typer.Option("-o", "--output")] = "text",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Kubernetes Events the agent recorded on Apps (syncs, drift, failures)."""
    selector = "involvedObject.kind=App"
    if for_object:
        _only_app(for_object.partition("/")[0])
        selector += f",involvedObject.name={for_object.partition('/')[2]}"

    async def go(client: KubeClient) -> list[dict[str, Any]]:
        resource = await client.resource("v1", "Event")
        data = await client.request(
            "GET",
            resource.path(namespace),
            what="Event list",
            params={"fieldSelector": selector},
        )
        return list(data.get("items", []))

    items = sorted(_run(kubeconfig, context, go), key=lambda e: e.get("lastTimestamp") or "")
    rows = [
        {
            "time": e.get("lastTimestamp"),
            "type": e.get("type"),
            "reason": e.get("reason"),
            "object": f"app/{e['involvedObject']['name']}",
            "message": e.get("message"),
        }
        for e in items
    ]
    if output_format == "json":
        output.print_json(rows)
        return
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("TIME", "TYPE", "REASON", "OBJECT", "MESSAGE"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[k] or "") for k in ("time", "type", "reason", "object", "message")))
    output.out.print(table)


commands.add_typer(get_app, name="get")


def _short_revision(revision: str) -> str:
    """A commit's first 12 digits; a digest ``sha256:…`` keeps its algorithm."""
    if revision.startswith("sha256:"):
        return revision[:19]
    return revision[:12]


def _only_app(what: str) -> None:
    if what not in ("app", "apps"):
        raise typer.BadParameter(f"{what!r}: only 'app' is supported")


def _app_row(item: dict[str, Any]) -> dict[str, Any]:
    status = item.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    history = status.get("history") or [{}]
    chart = status.get("chart") or {}
    return {
        "namespace": item["metadata"]["namespace"],
        "name": item["metadata"]["name"],
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
        "health": status.get("health", ""),
        "revision": status.get("lastAppliedRevision", ""),
        # a chart of a HelmSource: "NAME VERSION" (the revision is then the package's digest)
        "chart": f"{chart['name']} {chart['version']}" if chart.get("name") else "",
        "lastSync": history[0].get("finishedAt", ""),
        "suspended": bool((item.get("spec") or {}).get("suspend", False)),
    }


async def _apply(client: KubeClient, objects: list[dict[str, Any]], app_name: str) -> str:
    from tether.core import Manifest
    from tether.reconcile.engine import SyncEngine
    from tether.reconcile.options import SyncOptions

    options = SyncOptions(app=app_name, namespace=install.NAMESPACE, timeout=0)
    result = await SyncEngine(client, options).sync([Manifest(o) for o in objects])
    return result.changes.summary()
