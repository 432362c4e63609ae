"""``tether rollout status|promote|abort|retry APP``: look at and steer an App's rollouts.

The CLI never touches the workloads: a gesture is an annotation on the App
(``tether.dev/rollout-action: promote@<time>``, with who asked, from the API server's
SelfSubjectReview, and why), which the agent acts on once and records in the audit trail as
that person's decision (the name as claimed: decision 0032). A gesture the rollout's phase
refuses is not written: the command says why and what to do instead, and exits 1.
``status`` reads ``App.status.delivery``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tether.agent import crds
from tether.agent.annotations import REQUESTED_ANNOTATION
from tether.agent.conditions import now
from tether.cli import output
from tether.cli.agent import ContextOpt, KubeconfigOpt, NamespaceOpt, _run
from tether.cluster.client import ApiError, KubeClient
from tether.core.actor import default_actor
from tether.delivery.machine import refusal
from tether.delivery.model import ACTION_ANNOTATION, RolloutStatus
from tether.errors import ClusterError

# The field manager of a gesture's write: what the App's managedFields show the agent (a name
# the client chooses, so a hint, not an identity: decision 0032).
FIELD_MANAGER = "tether-cli"
rollout_app = typer.Typer(
    help="Look at and steer an App's progressive delivery (canary, blue-green).",
    no_args_is_help=True,
)
AppArg = Annotated[str, typer.Argument(help="The App's name.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why: kept in the audit trail.")]


@rollout_app.command(name="status", epilog="Example:\n\n  tether rollout status web -n team-a")
def status_cmd(
    name: AppArg,
    namespace: NamespaceOpt = "default",
    output_format: Annotated[str, typer.Option("-o", "--output")] = "text",
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Where each of the App's rollouts stands: phase, step, weight, analysis, message."""

    async def go(client: KubeClient) -> dict[str, Any]:
        apps = await client.resource(crds.API_VERSION, "App")
        found = await client.get(apps, namespace, name)
        if found is None:
            raise ClusterError(f"App {namespace}/{name} not found")
        return found

    found = _run(kubeconfig, context, go)
    delivery = dict((found.get("status") or {}).get("delivery") or {})
    if output_format == "json":
        output.print_json(delivery)
        return
    if not delivery:
        declared = bool((found.get("spec") or {}).get("delivery"))
        output.out.print(
            f"{namespace}/{name}: "
            + ("no rollout seen yet" if declared else "no spec.delivery: rolling updates")
        )
        return
    output.out.print(output.rollout_table(delivery))


def _gesture(action: str, help_text: str) -> None:
    def command(
        name: AppArg,
        namespace: NamespaceOpt = "default",
        reason: ReasonOpt = "",
        kubeconfig: KubeconfigOpt = None,
        context: ContextOpt = None,
    ) -> None:
        async def go(client: KubeClient) -> tuple[str, list[str]]:
            apps = await client.resource(crds.API_VERSION, "App")
            found = await client.get(apps, namespace, name)
            if found is None:
                raise ClusterError(f"App {namespace}/{name} not found")
            refused = refusals(action, found, name)
            if refused:
                return "", refused
            who = await whoami(client)
            stamp = now()
            annotations = {
                ACTION_ANNOTATION: f"{action}@{stamp}",
                f"{ACTION_ANNOTATION}-by": who,
                f"{ACTION_ANNOTATION}-reason": reason or None,
                REQUESTED_ANNOTATION: stamp,
            }
            await client.merge_patch(
                apps,
                namespace,
                name,
                {"metadata": {"annotations": annotations}},
                field_manager=FIELD_MANAGER,
            )
            return who, []

        who, refused = _run(kubeconfig, context, go)
        if refused:
            for line in refused:
                output.out.print(f"{action} of {namespace}/{name} not requested: {line}")
            raise typer.Exit(1)
        output.out.print(
            f"{action} of {namespace}/{name} requested as {who}: the agent acts on it once "
            f"(see `tether rollout status {name} -n {namespace}`)"
        )

    command.__doc__ = help_text
    rollout_app.command(
        name=action, epilog=f"Example:\n\n  tether rollout {action} web -n team-a --reason '...'"
    )(command)


def refusals(action: str, app: dict[str, Any], name: str) -> list[str]:
    """Why ``action`` would do nothing to any of ``app``'s rollouts, one line per target, as
    its status says now; [] when one of them would act on it (or no rollout was seen yet: the
    agent decides, and refuses with an Event if it must)."""
    delivery = (app.get("status") or {}).get("delivery") or {}
    statuses = {key: s for key, raw in delivery.items() if (s := RolloutStatus.of(raw))}
    said = {key: refusal(action, s.phase, name) for key, s in statuses.items()}
    if not said or not all(said.values()):
        return []
    return [f"{key} is {statuses[key].phase.value}: {why}" for key, why in said.items()]


_gesture("promote", "Go past the current step: an indefinite pause, an inconclusive analysis.")
_gesture("abort", "Take the candidate down: stable serves, the version is not rolled out again.")
_gesture("retry", "Roll an aborted, frozen or inconclusive version out again from step 0.")


async def whoami(client: KubeClient) -> str:
    """The user the API server knows us as (SelfSubjectReview); ``$USER@host`` when the
    server does not say."""
    try:
        resource = await client.resource("authentication.k8s.io/v1", "SelfSubjectReview")
        review = await client.create(
            resource,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    except (ApiError, ClusterError):
        return default_actor()
    username = ((review.get("status") or {}).get("userInfo") or {}).get("username")
    return str(username) if username else default_actor()
