"""What ``tether status`` and ``tether get app`` share: reading an app's status (every object,
its health and, compared with what the last sync applied, its sync state) and printing it below
the command's own headline."""

from __future__ import annotations

import asyncio

from tether.agent.appliedsource import applied_source
from tether.cli import output
from tether.cli.devcluster import resolve_helm, resolve_kustomize
from tether.cluster.kubeconfig import Connection
from tether.reconcile.status import AppStatus, app_status


def read_app_status(identity: str, connection: Connection) -> AppStatus:
    """The status of app ``identity`` (``namespace.name``); an agent's App on a HelmSource or
    OCISource is compared with the chart or artifact it applied (helm is found only then)."""
    return asyncio.run(
        app_status(
            identity,
            connection,
            kustomize=resolve_kustomize(),
            resolve=applied_source,
            helm=resolve_helm,
        )
    )


def print_app_status(report: AppStatus) -> None:
    """The chart line (a repository chart), the objects table, and why it was not compared."""
    if report.source.get("chartVersion"):
        output.out.print(output.chart_line(report.source))
    output.out.print(output.health_table(report.health, report.sync))
    if report.sync_error:
        output.out.print(output.styled("not compared with the source: {}", report.sync_error))
