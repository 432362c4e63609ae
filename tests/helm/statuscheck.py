"""``tether status`` of an agent's App, object by object, and suspending the App so that a hand
edit stays for status to see (the agent heals it otherwise)."""

from __future__ import annotations

import json

from tests.agent.conftest import app_condition, wait_for
from tests.conftest import Cli, Kubectl


def sync_states(cli: Cli, namespace: str, app: str = "web") -> tuple[dict[str, str], str]:
    """``KIND/NAME`` -> Synced, OutOfSync, ... as ``tether status -o json`` says; its syncError."""
    code, out, err = cli("status", app, "-n", namespace, "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    return {f"{o['kind']}/{o['name']}": o["sync"] for o in report["objects"]}, report["syncError"]


def suspend(cli: Cli, kubectl: Kubectl, namespace: str, app: str = "web") -> None:
    code, _, err = cli("suspend", "app", app, "-n", namespace, f"--kubeconfig={kubectl.kubeconfig}")
    assert code == 0, err
    wait_for(
        lambda: (
            (app_condition(kubectl, namespace, app, "Ready") or {}).get("reason") == "Suspended"
        ),
        30,
        "the App suspended",
    )
