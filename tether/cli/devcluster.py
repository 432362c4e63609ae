"""``tether dev-cluster up | down | status | kubeconfig``: the local control plane for people."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tether.cli import output
from tether.devcluster.provision import TextLog, ensure_all, ensure_binary
from tether.errors import TetherError

if TYPE_CHECKING:
    from tether.devcluster.controlplane import DevCluster

dev_cluster_app = typer.Typer(
    help="A local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, "
    "kwok fake nodes) on loopback, built from Go modules on first use and cached.",
    no_args_is_help=True,
)
NameOpt = Annotated[str, typer.Option("--name", help="Name of the dev cluster.")]


def resolve_kustomize() -> Path:
    """The kustomize binary the renderer uses (built and cached like the cluster binaries)."""
    return ensure_binary("kustomize")


def resolve_helm() -> Path:
    """The helm binary charts are rendered with (built and cached like the cluster binaries)."""
    return ensure_binary("helm")


def _cluster(name: str) -> DevCluster:
    """The dev cluster ``name`` (its module, with the PKI's cryptography, loads only here)."""
    from tether.devcluster.controlplane import DevCluster

    return DevCluster(name)


def _fail(error: TetherError) -> typer.Exit:
    output.print_error(error)
    return typer.Exit(2)


@dev_cluster_app.command(epilog="Example:\n\n  export KUBECONFIG=$(tether dev-cluster up)")
def up(name: NameOpt = "tether") -> None:
    """Start the dev cluster (or reuse it) and print its kubeconfig path."""
    try:
        path = _cluster(name).up(TextLog())
    except TetherError as error:
        raise _fail(error) from None
    print(path)


@dev_cluster_app.command(epilog="Example:\n\n  tether dev-cluster down --name tether")
def down(name: NameOpt = "tether") -> None:
    """Stop the dev cluster and delete its data."""
    _cluster(name).down()
    output.err.print(f"dev cluster {name!r} stopped")


@dev_cluster_app.command(epilog="Example:\n\n  tether dev-cluster status -o json")
def status(
    name: NameOpt = "tether",
    output_format: Annotated[str, typer.Option("-o", "--output", help="text or json")] = "text",
) -> None:
    """Whether each component runs and the API server is ready (exit 1 when not)."""
    state = _cluster(name).status()
    if output_format == "json":
        output.print_json(state)
    else:
        output.out.print(f"dev cluster {name!r}: {'ready' if state['ready'] else 'not ready'}")
        for component, alive in state["components"].items():
            output.out.print(f"  {component:<24} {'running' if alive else 'stopped'}")
        if state.get("server"):
            output.out.print(f"  server: {state['server']}\n  kubeconfig: {state['kubeconfig']}")
    raise typer.Exit(0 if state["ready"] else 1)


@dev_cluster_app.command(epilog="Example:\n\n  export KUBECONFIG=$(tether dev-cluster kubeconfig)")
def kubeconfig(name: NameOpt = "tether") -> None:
    """Print the dev cluster's kubeconfig path (exit 1 when it is not running)."""
    cluster = _cluster(name)
    if not cluster.kubeconfig_path.is_file():
        output.err.print(f"dev cluster {name!r} is not running: run `tether dev-cluster up`")
        raise typer.Exit(1)
    print(cluster.kubeconfig_path)


@dev_cluster_app.command(
    epilog="Example:\n\n  tether dev-cluster provision   # once per machine; CI runs it first"
)
def provision() -> None:
    """Build every control-plane binary that is not cached yet (what CI runs first)."""
    try:
        ensure_all(TextLog())
    except TetherError as error:
        raise _fail(error) from None
