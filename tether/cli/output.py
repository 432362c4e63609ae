"""How results look: Rich tables for people, JSON for machines. Nothing here decides anything.

Every text Tether prints may hold what someone else wrote (a YAML key, a kustomize or API server
message, a commit subject), so neither console reads Rich markup in what it prints: ``[bold]`` or
``[/]`` in an error is shown as written, never interpreted (and never a crash). Tether's own
styling goes through ``styled``, which escapes every value it is given.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tether.core import Action, ChangeSet, HealthReport, HealthStatus, ObjectRef
from tether.delivery.model import RolloutStatus

if TYPE_CHECKING:  # the CLI's start-up imports neither the audit store nor the sync engine
    from tether.audit import SyncRecord
    from tether.reconcile.run import DiffReport, SyncReport

out = Console(highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False)

_ACTION_STYLE = {
    Action.CREATED: "green",
    Action.CONFIGURED: "yellow",
    Action.UNCHANGED: "dim",
    Action.PRUNED: "red",
    Action.SKIPPED: "cyan",
    Action.FAILED: "bold red",
}
_HEALTH_STYLE = {
    HealthStatus.HEALTHY: "green",
    HealthStatus.PROGRESSING: "yellow",
    HealthStatus.MISSING: "magenta",
    HealthStatus.DEGRADED: "red",
    HealthStatus.UNKNOWN: "dim",
}


def styled(template: str, *values: object) -> Text:
    """``template`` (Tether's own markup, ``{}`` for each value) with ``values`` escaped: a
    value is always shown as written."""
    return Text.from_markup(template.format(*(escape(str(value)) for value in values)))


def chart_line(source: dict[str, str]) -> Text:
    """The chart a repository-chart app last applied, from its inventory's recorded source."""
    return styled(
        "chart {} {} ({}) from {}",
        source.get("chart", ""),
        source.get("chartVersion", ""),
        source.get("chartDigest", ""),
        source.get("chartRepository", ""),
    )


def print_note(message: str) -> None:
    """A remark beside a command's result (stderr; nothing when ``message`` is empty)."""
    if message:
        err.print(message)


def print_error(message: object) -> None:
    """``error: message`` on stderr, the message shown exactly as written."""
    err.print(styled("[bold red]error:[/] {}", message))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def sync_to_dict(report: SyncReport) -> dict[str, Any]:
    return {
        "app": report.app,
        "source": report.source_url,
        "revision": report.revision.to_dict() if report.revision else None,
        "result": report.result,
        "error": report.error,
        "auditError": report.audit_error,
        "dryRun": report.dry_run,
        "durationSeconds": round(report.duration_seconds, 3),
        "changes": report.changes.to_list(),
        "health": health_to_dict(report.health),
    }


def health_to_dict(report: HealthReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "status": report.status.value,
        "objects": [
            {
                "kind": o.ref.kind,
                "namespace": o.ref.namespace,
                "name": o.ref.name,
                "status": o.status.value,
                "message": o.message,
            }
            for o in report.objects
        ],
    }


def changes_table(changes: ChangeSet, show_unchanged: bool = False) -> Table:
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("ACTION", "KIND", "NAMESPACE", "NAME", "REASON"):
        table.add_column(column)
    for change in changes.changes:
        if change.action is Action.UNCHANGED and not show_unchanged:
            continue
        style = _ACTION_STYLE[change.action]
        table.add_row(
            Text(change.action.value, style=style),
            change.ref.group_kind,
            change.ref.namespace or "-",
            change.ref.name,
            change.reason[:120],
        )
    return table


def rollout_table(delivery: dict[str, Any]) -> Group:
    """One row per target, then each target's analysis and message on lines of their own:
    also what ``tether get app`` shows under the objects. The row is never cut short on a
    narrow terminal or a pipe (80 columns): the target, phase and revisions are what a person
    types into the next command; the lines below wrap instead."""
    table = Table(show_edge=False, box=None, pad_edge=False, padding=(0, 1, 0, 0))
    longest_target = max((len(target) for target in delivery), default=len("TARGET"))
    for column, whole in (
        ("TARGET", longest_target),
        ("PHASE", len("Inconclusive")),
        ("STEP", len("STEP")),
        ("WEIGHT", len("WEIGHT")),
        ("CANDIDATE", 12),
        ("STABLE", 12),
    ):
        table.add_column(column, no_wrap=True, min_width=whole)
    details: list[Text] = []
    for target, raw in sorted(delivery.items()):
        status = RolloutStatus.of(raw)
        if status is None:
            continue
        analysis = status.analysis
        table.add_row(
            target,
            status.phase.value,
            str(status.step),
            f"{status.weight}%",
            status.candidate.revision[:12] if status.candidate else "-",
            status.stable.revision[:12] if status.stable and status.stable.revision else "-",
        )
        if analysis:
            measured = f"{analysis.name} {analysis.phase} ({len(analysis.measurements)})"
            details.append(Text(f"{target}: analysis {measured}"))
        if status.message:
            details.append(Text(f"{target}: {status.message}"))
    return Group(table, *details)


def health_table(report: HealthReport, sync: dict[ObjectRef, str] | None = None) -> Table:
    """One row an object: its health and, with ``sync`` (``tether status``), whether it is as
    the source renders it (Synced, OutOfSync, PrunePending; "-" when not compared)."""
    table = Table(show_edge=False, box=None, pad_edge=False)
    columns = ("HEALTH", "SYNC") if sync is not None else ("HEALTH",)
    for column in (*columns, "KIND", "NAMESPACE", "NAME", "MESSAGE"):
        table.add_column(column)
    for item in sorted(report.objects, key=lambda o: (-o.status.severity, o.ref)):
        style = _HEALTH_STYLE[item.status]
        synced = (sync.get(item.ref, "-"),) if sync is not None else ()
        table.add_row(
            Text(item.status.value, style=style),
            *synced,
            item.ref.group_kind,
            item.ref.namespace or "-",
            item.ref.name,
            item.message,
        )
    return table


def print_sync(report: SyncReport, verbose: bool) -> None:
    revision = f" at {report.revision}" if report.revision else ""
    if report.changes.changes:
        out.print(changes_table(report.changes, show_unchanged=verbose))
    summary = report.changes.summary()
    if report.succeeded:
        health = f", {report.health.status.value}" if report.health else ""
        verb = "would be" if report.dry_run else "synced"
        out.print(
            styled(
                "[bold]{}[/]{}: {} — {}{} ({}s)",
                report.app,
                revision,
                verb,
                summary,
                health,
                f"{report.duration_seconds:.1f}",
            )
        )
    else:
        err.print(
            styled(
                "[bold red]sync of {}{} failed[/] ({}):\n{}",
                report.app,
                revision,
                summary,
                report.error,
            )
        )


def print_diff(report: DiffReport) -> None:
    for item in report.diffs:
        out.print(styled("[bold]{}[/] {}", item.action, item.ref))
        if item.diff:
            sys.stdout.write(item.diff if item.diff.endswith("\n") else item.diff + "\n")
    if report.in_sync:
        out.print(f"in sync at {report.revision}")


def history_table(records: list[SyncRecord]) -> Table:
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in (
        "WHEN (UTC)",
        "RESULT",
        "REVISION",
        "AUTHOR",
        "SUBJECT",
        "CHANGES",
        "BY",
        "TOOK",
    ):
        table.add_column(column)
    for record in records:
        revision = record.revision
        style = (
            "green"
            if record.result == "succeeded"
            else "red"
            if record.result == "failed"
            else "cyan"
        )
        table.add_row(
            record.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            Text(record.result, style=style),
            revision.short if revision else "-",
            revision.author if revision else "-",
            (revision.subject if revision else record.error)[:50],
            record.changes.summary(),
            record.actor,
            f"{record.duration_seconds:.1f}s",
        )
    return table


def record_to_dict(record: SyncRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "app": record.app,
        "source": record.source_url,
        "revision": record.revision.to_dict() if record.revision else None,
        "result": record.result,
        "error": record.error,
        "startedAt": record.started_at.isoformat(),
        "durationSeconds": record.duration_seconds,
        "actor": record.actor,
        "health": record.health,
        "changes": record.changes.to_list(),
    }


@contextlib.contextmanager
def progress(what: str, enabled: bool = True) -> Iterator[None]:
    """A spinner on stderr while something slow runs, for people at a terminal only."""
    if not enabled or not err.is_terminal:
        yield
        return
    with err.status(f"{what}…"):
        yield
