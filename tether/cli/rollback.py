"""``tether rollback APP --reason ... [--to REV]``: ask the agent to put an App's last good
render back, quarantine what it runs now, and open the revert pull request.

The CLI never touches workloads: it writes the request on the App (annotation
``tether.dev/rollback-request``, JSON with who, why, to which revision, when) and the agent acts
on it once, with Git not needed (the render comes from its audit store). Who asks is the
cluster's answer to a SelfSubjectReview, not a name typed on the command line. With
``--wait``, the command waits until the agent has handled the request and prints the outcome.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import typer

from tether.agent import crds
from tether.agent.annotations import ROLLBACK_REQUEST_ANNOTATION
from tether.agent.conditions import now
from tether.cli import output
from tether.cli.agent import ContextOpt, KubeconfigOpt, NamespaceOpt, _run
from tether.cluster.client import ApiError, KubeClient
from tether.errors import TetherError

commands = typer.Typer()
HANDLED = "lastRollbackRequest"


async def who_am_i(client: KubeClient) -> str:
    """The user the cluster knows this kubeconfig as (SelfSubjectReview)."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        resource = await client.resource("authentication.k8s.io/v1", "SelfSubjectReview")
        answer = await client.create(resource, review)
    except (ApiError, TetherError) as error:
        raise TetherError(
            f"could not ask the cluster who you are (SelfSubjectReview): {error}; a rollback "
            "records who asked, so it needs Kubernetes 1.28 or later"
        ) from None
    return str(((answer.get("status") or {}).get("userInfo") or {}).get("username") or "unknown")


def request_text(reason: str, to: str | None, by: str) -> str:
    """The annotation's value: one JSON object, keys sorted (so its text is its identity)."""
    return json.dumps({"at": now(), "by": by, "reason": reason, "to": to}, sort_keys=True)


@commands.command(
    epilog="Examples:\n\n  tether rollback web -n team-a --reason 'checkout errors at 12%'\n\n"
    "  tether rollback web -n team-a --to 3f2a9c1 --reason 'back to Tuesday' --wait"
)
def rollback(
    name: Annotated[str, typer.Argument(help="The App's name.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (required; goes to the audit trail and the PR).")
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Roll back to this commit's render (default: last good)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the agent to act and show the outcome.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits.")] = 120.0,
    namespace: NamespaceOpt = "default",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Put an App's last good render back with no Git round trip, quarantine what it runs now
    (auto-sync stays on and skips it) and open a revert pull request."""
    if not reason.strip():
        raise typer.BadParameter("say why in --reason", param_hint="--reason")

    async def go(client: KubeClient) -> dict[str, Any]:
        text = request_text(reason, to, await who_am_i(client))
        apps = await client.resource(crds.API_VERSION, "App")
        patch = {"metadata": {"annotations": {ROLLBACK_REQUEST_ANNOTATION: text}}}
        await client.merge_patch(apps, namespace, name, patch)
        if not wait:
            return {}
        return await _handled(client, namespace, name, text, timeout)

    status = _run(kubeconfig, context, go)
    output.out.print(f"rollback of {namespace}/{name} requested")
    if wait:
        _print_outcome(status)


async def _handled(
    client: KubeClient, namespace: str, name: str, text: str, timeout: float
) -> dict[str, Any]:
    apps = await client.resource(crds.API_VERSION, "App")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app = await client.get(apps, namespace, name) or {}
        status = app.get("status") or {}
        if (status.get(HANDLED) or {}).get("request") == text:
            return dict(status)
        await asyncio.sleep(0.5)
    raise TetherError(
        f"App {namespace}/{name}: the agent did not act on the rollback within {timeout:g}s; "
        f"see `tether events app {name} -n {namespace}`"
    )


def _print_outcome(status: dict[str, Any]) -> None:
    """The agent's answer; exit 2 when the rollback failed."""
    outcome = status.get(HANDLED) or {}
    if outcome.get("result") != "RolledBack":
        output.print_error(TetherError(f"the rollback failed: {outcome.get('message', '')}"))
        raise typer.Exit(2)
    output.out.print(outcome.get("message", ""))
    for entry in status.get("quarantine") or []:
        pull = entry.get("pullRequest") or {}
        pending = "pending (the forge did not answer)" if entry.get("pullRequestPending") else "-"
        output.out.print(
            f"quarantined {entry.get('revision', '')[:12]}: revert {pull.get('url') or pending}"
        )
