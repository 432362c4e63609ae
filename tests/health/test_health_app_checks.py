"""CEL health checks written in an App, run by the agent as a process against the real control
plane, on a kind of the test's own (Gadget) that the test moves through its phases."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.agent.conftest import (
    AgentProcess,
    app_condition,
    apply_yaml,
    source_and_app,
    wait_for,
)
from tests.conftest import GitRepo, Kubectl
from tests.health.conftest import GROUP
from tether.agent.annotations import REQUESTED_ANNOTATION

pytestmark = pytest.mark.cluster

CHECKS = f"""  health:
    gracePeriod: 2s
    checks:
      - group: {GROUP}
        kind: Gadget
        degraded: 'object.status.phase == "Failed"'
        progressing: '!has(object.status) || object.status.phase == "Provisioning"'
        healthy: 'object.status.phase == "Ready"'
        message: '"gadget is " + object.?status.?phase.orValue("new")'
"""


def _gadget(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gadget",
            "metadata": {"name": name},
            "spec": {"size": 1},
        }
    )


def _set_phase(kubectl: Kubectl, namespace: str, phase: str) -> None:
    patch = json.dumps({"status": {"phase": phase}})
    kubectl(
        "patch",
        f"gadgets.{GROUP}",
        "widget",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        patch,
    )


def _app_health(kubectl: Kubectl, namespace: str, name: str = "web") -> str:
    app: dict[str, Any] = kubectl.get("apps.tether.dev", name, namespace) or {}
    return str((app.get("status") or {}).get("health", ""))


def test_an_apps_cel_checks_judge_its_custom_resource(
    start_agent: Callable[..., AgentProcess],
    test_crds: None,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
) -> None:
    repo.write("widget.yaml", _gadget("widget")).commit("a gadget")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), extra=CHECKS))
    start_agent()
    wait_for(lambda: kubectl.get(f"gadgets.{GROUP}", "widget", namespace), 60, "the gadget")

    _set_phase(kubectl, namespace, "Provisioning")
    _set_phase(kubectl, namespace, "Ready")
    wait_for(lambda: _app_health(kubectl, namespace) == "Healthy", 60, "Healthy by the check")

    _set_phase(kubectl, namespace, "Failed")
    kubectl(
        "annotate",
        "apps.tether.dev",
        "web",
        "-n",
        namespace,
        "--overwrite",
        f"{REQUESTED_ANNOTATION}=after-failure",
    )
    # The wait ends once the failure has lasted the grace period (2 s), long before the 30 s
    # health timeout; either way the App says Degraded.
    wait_for(lambda: _app_health(kubectl, namespace) == "Degraded", 60, "Degraded by the check")

    # The gadget recovers with nothing else changing (no commit, no drift, no request, an App
    # interval of an hour): the agent looks at a not-Healthy App again on its own.
    _set_phase(kubectl, namespace, "Ready")
    wait_for(lambda: _app_health(kubectl, namespace) == "Healthy", 120, "Healthy again, unasked")


def test_an_app_with_a_check_that_does_not_compile_is_refused_before_any_sync(
    start_agent: Callable[..., AgentProcess],
    test_crds: None,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
) -> None:
    repo.write("widget.yaml", _gadget("widget")).commit("a gadget")
    bad = CHECKS.replace('object.status.phase == "Failed"', "object.status.phase ==")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), extra=bad))
    start_agent()

    def refused() -> str:
        ready = app_condition(kubectl, namespace, "web", "Ready") or {}
        return str(ready.get("message", "")) if ready.get("status") == "False" else ""

    message = wait_for(refused, 60, "the App to be refused")
    assert f"app '{namespace}.web' spec.health.checks: check 1 (Gadget.{GROUP})" in message
    assert "degraded 'object.status.phase ==' does not compile" in message
    assert kubectl.get(f"gadgets.{GROUP}", "widget", namespace) is None
