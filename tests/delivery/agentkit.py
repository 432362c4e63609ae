"""What the delivery tests that run an agent process share: the rollout of ``Deployment/web``
as the App's status shows it, and a wait that says where the rollout stood and what the agents
logged when it times out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agent.conftest import wait_for
from tests.conftest import Kubectl

TARGET = "Deployment/web"
ROLLOUT_TIMEOUT = 240.0


def rollout(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    """``status.delivery`` of App ``web`` for ``Deployment/web`` ({} before any rollout)."""
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    return dict(((app.get("status") or {}).get("delivery") or {}).get(TARGET) or {})


def waited(
    kubectl: Kubectl,
    namespace: str,
    tmp: Path,
    check: Any,
    what: str,
    shown: Callable[[], str] = lambda: "",
) -> Any:
    """``wait_for`` (its result); on a timeout, the rollout, ``shown()`` and the agents' logs."""
    try:
        return wait_for(check, ROLLOUT_TIMEOUT, what)
    except AssertionError as error:
        logs = "".join(p.read_text(errors="replace")[-4000:] for p in tmp.glob("agent-*.log"))
        more = shown()
        raise AssertionError(
            f"{error}\nrollout: {rollout(kubectl, namespace)}\n{more + chr(10) if more else ''}{logs}"
        ) from None
