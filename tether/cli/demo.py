"""``tether demo``: the whole loop on a laptop in about a minute.

Starts the local control plane, turns ``examples/gitops`` into a Git repository, syncs it,
pushes a change and syncs again, then edits an object by hand with kubectl (drift), shows it
with ``diff`` and puts it back with ``sync``. Every step prints what a person would type.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from rich.rule import Rule

from tether.audit import AuditStore
from tether.cli import output
from tether.cluster import kubeconfig
from tether.core.paths import cache_root
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import TextLog, ensure_binary
from tether.errors import TetherError
from tether.reconcile.options import SyncOptions
from tether.reconcile.run import SourceSpec, run_diff, run_sync
from tether.source.workspace import commit_all, init_repository

APP = "guestbook"
PATH = "apps/guestbook/overlays/dev"
NAMESPACE = "guestbook-dev"


def examples_dir() -> Path:
    """``examples/gitops``: inside the installed package, or next to it in a source checkout."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[1] / "_examples" / "gitops",
        here.parents[2] / "examples" / "gitops",
    ):
        if candidate.is_dir():
            return candidate
    raise TetherError("the example repository examples/gitops is missing from this installation")


def _step(title: str, command: str) -> None:
    output.out.print(Rule(f"[bold]{title}"))
    output.out.print(f"[dim]$ {command}[/]")


def run_demo(cluster_name: str = "tether") -> int:
    kubeconfig_path = DevCluster(cluster_name).up(TextLog())
    connection = kubeconfig.load(kubeconfig_path)
    kustomize = ensure_binary("kustomize")
    repo = cache_root() / "demo" / "gitops"
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(examples_dir(), repo)
    init_repository(repo)
    commit_all(repo, "Add guestbook with a dev overlay")
    spec = SourceSpec(str(repo), PATH)
    options = SyncOptions(app=APP, prune=True, timeout=120)
    audit = AuditStore(str(cache_root() / "demo" / "audit.db"))
    sync_cmd = f"tether sync --source {repo} --path {PATH} --app {APP} --prune"

    def sync(title: str) -> bool:
        _step(title, sync_cmd)
        report = asyncio.run(
            run_sync(spec, options, connection, audit=audit, actor="demo", kustomize=kustomize)
        )
        output.print_sync(report, verbose=True)
        return report.succeeded

    def diff(title: str) -> None:
        _step(title, f"tether diff --source {repo} --path {PATH} --app {APP}")
        output.print_diff(asyncio.run(run_diff(spec, options, connection, kustomize=kustomize)))

    try:
        ok = sync("1. First sync: everything is created")
        settings = repo / "apps/guestbook/overlays/dev/settings.yaml"
        settings.write_text(settings.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"))
        commit_all(repo, "Turn dev logging up to trace")
        ok = sync("2. A change is pushed to Git and synced: one object configured") and ok
        kubectl = str(ensure_binary("kubectl"))
        edit = [
            kubectl,
            f"--kubeconfig={kubeconfig_path}",
            "-n",
            NAMESPACE,
            "scale",
            "deployment/guestbook",
            "--replicas=5",
        ]
        _step("3. Someone edits the cluster by hand (drift)", " ".join(["kubectl", *edit[2:]]))
        subprocess.run(edit, check=True)
        diff("4. Tether shows the drift")
        ok = sync("5. The next sync puts Git's state back") and ok
        diff("6. In sync again")
        _step("7. The audit trail", f"tether history {APP}")
        output.out.print(output.history_table(audit.history(APP, 5)))
    finally:
        audit.close()
    output.out.print(
        f"\nThe dev cluster keeps running: export KUBECONFIG={kubeconfig_path}\n"
        "Stop it with: tether dev-cluster down"
    )
    return 0 if ok else 2
