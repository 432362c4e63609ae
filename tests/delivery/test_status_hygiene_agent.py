"""Targets that leave ``spec.delivery`` leave no trace, with the agent as a process against the
real control plane: a paused canary's target taken out of the spec loses its rollout status,
its metrics series and its candidate Deployment (in an App that does not prune, so the engine,
not the inventory prune, takes it down); the last target taken out empties
``status.delivery``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.agent.conftest import AgentProcess, apply_yaml, start_agent, tether_crds
from tests.conftest import GitRepo, Kubectl
from tests.delivery.agentkit import TARGET, rollout, waited
from tests.delivery.signals import new_version

__all__ = ["start_agent", "tether_crds"]  # fixtures used here

API = "Deployment/api"


def _deployment(name: str, version: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}, version: {version}}}}}
    spec:
      containers: [{{name: {name}, image: "registry.example/{name}:{version}"}}]
"""


def _entry(name: str) -> str:
    return f"""    - target: {{kind: Deployment, name: {name}}}
      canary:
        steps: [{{setWeight: 50}}, {{pause: {{}}}}]
"""


def _app(namespace: str, url: str, names: tuple[str, ...]) -> str:
    delivery = "  delivery:\n" + "".join(_entry(n) for n in names) if names else ""
    return f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: repo, namespace: {namespace}}}
spec: {{url: {json.dumps(url)}, interval: 1h}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{name: repo}}
  path: app
  syncPolicy: {{prune: false, interval: 5s}}
  healthTimeout: 30s
{delivery}"""


def _delivery(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    return dict((app.get("status") or {}).get("delivery") or {})


def _condition(kubectl: Kubectl, namespace: str, kind: str) -> tuple[str, str] | None:
    """``(status, reason)`` of App ``web``'s condition ``kind``, None when it has none."""
    app = kubectl.get("apps.tether.dev", "web", namespace) or {}
    for condition in (app.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("status")), str(condition.get("reason"))
    return None


def _image(kubectl: Kubectl, namespace: str, name: str) -> str:
    deployment = kubectl.get("deployment", name, namespace) or {}
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def _rollout_condition(kubectl: Kubectl, namespace: str) -> tuple[str, str] | None:
    return _condition(kubectl, namespace, "Rollout")


def _series(agent: AgentProcess, namespace: str, target: str) -> set[str]:
    """The names of the agent's metrics series labelled with App ``web`` and ``target``."""
    text = httpx.get(f"{agent.url}/metrics", timeout=10).text
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("app") == f"{namespace}/web" and sample.labels.get("target") == target
    }


def test_targets_taken_out_of_spec_delivery_leave_no_status_metrics_or_candidate(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path
) -> None:
    agent = start_agent("agent-a")
    v1 = new_version()
    repo.write("app/web.yaml", _deployment("web", v1)).write("app/api.yaml", _deployment("api", v1))
    repo.commit("v1")
    url = str(repo.root)
    apply_yaml(kubectl, _app(namespace, url, ("web", "api")))
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            {k: v.get("phase") for k, v in _delivery(kubectl, namespace).items()}
            == {TARGET: "Promoted", API: "Promoted"}
        ),
        "both targets deployed",
    )

    v2 = new_version()
    repo.write("app/web.yaml", _deployment("web", v2)).commit("web v2")
    kubectl(
        "annotate", "gitsources.tether.dev/repo", "-n", namespace, "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )  # fmt: skip
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Paused"
            and kubectl.get("deployment", "web-canary", namespace) is not None
        ),
        "web's canary paused beside stable",
    )
    assert "tether_rollout_phase" in _series(agent, namespace, TARGET)

    # web leaves spec.delivery mid-rollout: its status, series and canary go; api's stay
    apply_yaml(kubectl, _app(namespace, url, ("api",)))
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            set(_delivery(kubectl, namespace)) == {API}
            and kubectl.get("deployment", "web-canary", namespace) is None
        ),
        "web's rollout and canary gone",
    )
    assert _series(agent, namespace, TARGET) == set()
    assert "tether_rollout_phase" in _series(agent, namespace, API)
    reasons = [
        (e.get("reason"), e.get("message", ""))
        for e in json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    ]
    assert any(r == "RolloutRemoved" and TARGET in m for r, m in reasons), reasons
    # with no rollout left on it, web is Git's v2 as rendered
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            (kubectl.get("deployment", "web", namespace) or {})["spec"]["template"]["spec"][
                "containers"
            ][0]["image"]
            == f"registry.example/web:{v2}"
        ),
        "web on Git's v2",
    )

    # api still under delivery: the Rollout condition tells of it
    assert _rollout_condition(kubectl, namespace) == ("True", "Promoted")

    # the last target leaves: status.delivery is emptied, and the Rollout condition removed
    apply_yaml(kubectl, _app(namespace, url, ()))
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            _delivery(kubectl, namespace) == {} and _rollout_condition(kubectl, namespace) is None
        ),
        "no rollouts and no Rollout condition",
    )
    assert _series(agent, namespace, API) == set()
    # and it stays removed: a new version, now a plain rolling update, brings none back
    v3 = new_version()
    repo.write("app/web.yaml", _deployment("web", v3)).commit("web v3")
    kubectl(
        "annotate", "gitsources.tether.dev/repo", "-n", namespace, "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )  # fmt: skip
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: _image(kubectl, namespace, "web") == f"registry.example/web:{v3}",
        "web on Git's v3",
    )
    assert _rollout_condition(kubectl, namespace) is None
    ready = _condition(kubectl, namespace, "Ready")
    assert ready is not None and ready[0] == "True", ready
