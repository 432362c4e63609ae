"""A canary routed by Gateway API, driven by the agent as a process against the real control
plane: the HTTPRoute's weights follow the steps, the stable Service selects only the stable
ReplicaSet's pods and the canary Service only the candidate's; the agent is killed while the
rollout is paused and another one resumes it with the route where it was; a promotion by hand
ends with all traffic back on the Git name's Service."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.agent.conftest import (
    apply_yaml,
    source_and_app,
    start_agent,
    tether_crds,
)
from tests.conftest import GitRepo, Kubectl
from tests.delivery import renders
from tests.delivery.agentkit import rollout, waited
from tests.delivery.signals import new_version

__all__ = ["start_agent", "tether_crds"]  # fixtures used here


def _render(version: str) -> str:
    return renders.routed_render(version)


DELIVERY = """  delivery:
    - target: {kind: Deployment, name: web}
      canary:
        trafficRouting:
          gatewayAPI: {httpRoute: web, stableService: web-stable, canaryService: web-canary}
        steps:
          - setWeight: 30
          - pause: {}
          - setWeight: 100
"""


def _weights(kubectl: Kubectl, namespace: str) -> dict[str, int]:
    route = kubectl.get("httproute", "web", namespace) or {}
    rules = (route.get("spec") or {}).get("rules") or [{}]
    return {ref["name"]: ref.get("weight", 1) for ref in rules[0].get("backendRefs") or []}


def _selector(kubectl: Kubectl, namespace: str, service: str) -> dict[str, str]:
    found = kubectl.get("service", service, namespace) or {}
    return dict((found.get("spec") or {}).get("selector") or {})


def _endpoints(kubectl: Kubectl, namespace: str, service: str) -> set[str]:
    slices = json.loads(
        kubectl(
            "get",
            "endpointslices",
            "-n",
            namespace,
            "-l",
            f"kubernetes.io/service-name={service}",
            "-o",
            "json",
        ).stdout
    )
    return {
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses") or []
    }


def _pod_ips(kubectl: Kubectl, namespace: str, selector: str) -> set[str]:
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)
    return {
        p["status"]["podIP"]
        for p in pods["items"]
        if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")
    }


def _until(kubectl: Kubectl, namespace: str, tmp: Path, check: Any, what: str) -> Any:
    return waited(
        kubectl, namespace, tmp, check, what, lambda: f"route: {_weights(kubectl, namespace)}"
    )


def _push(repo: GitRepo, kubectl: Kubectl, namespace: str, version: str) -> str:
    commit = repo.write("app/web.yaml", _render(version)).commit(version)
    kubectl(
        "annotate",
        "gitsources.tether.dev/repo",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )
    return commit


def test_a_routed_canary_moves_route_weights_and_survives_an_agent_kill(
    start_agent: Any,
    gateway_api: None,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    tmp_path: Path,
) -> None:
    first = start_agent("agent-a")
    v1 = new_version()
    repo.write("app/web.yaml", _render(v1)).commit(v1)
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=DELIVERY))
    _until(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Promoted"
            and _weights(kubectl, namespace) == {"web-stable": 1}  # as in Git (default 1)
        ),
        "v1 deployed with its route as Git wrote it",
    )

    v2 = new_version()
    commit = _push(repo, kubectl, namespace, v2)
    _until(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Paused"
            and _weights(kubectl, namespace) == {"web-stable": 70, "web-canary": 30}
        ),
        "the canary paused at 30%",
    )
    stable_hash = _selector(kubectl, namespace, "web-stable").get("pod-template-hash")
    assert stable_hash
    assert _selector(kubectl, namespace, "web-canary") == {
        "app": "web",
        "tether.dev/track": "canary",
    }
    stable_ips = _pod_ips(kubectl, namespace, f"app=web,pod-template-hash={stable_hash}")
    canary_ips = _pod_ips(kubectl, namespace, "tether.dev/track=canary")
    assert stable_ips and canary_ips and not stable_ips & canary_ips
    _until(
        kubectl,
        namespace,
        tmp_path,
        lambda: _endpoints(kubectl, namespace, "web-stable") == stable_ips,
        "stable endpoints",
    )
    _until(
        kubectl,
        namespace,
        tmp_path,
        lambda: _endpoints(kubectl, namespace, "web-canary") == canary_ips,
        "canary endpoints",
    )

    # The agent dies while paused; another resumes from the App's status with the route as is.
    first.kill()
    start_agent("agent-b")
    kubectl(
        "annotate",
        "apps.tether.dev/web",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/rollout-action=promote@{datetime.now(UTC).isoformat()}",
    )
    weights_seen: list[dict[str, int]] = []

    def promoted() -> bool:
        weights_seen.append(_weights(kubectl, namespace))
        current = rollout(kubectl, namespace)
        return current.get("phase") == "Promoted" and current["stable"]["revision"] == commit

    _until(kubectl, namespace, tmp_path, promoted, "the canary promoted by hand")
    # Until promoted, traffic only ever moved towards the canary and always summed to 100; the
    # route went back to Git's shape (all on the Git name's Service) only at the end. The poll
    # reads the route before the phase, so the last splits seen may already be Git's shape.
    split = list(itertools.takewhile(lambda w: "web-canary" in w, weights_seen))
    assert all(w == {"web-stable": 1} for w in weights_seen[len(split) :]), weights_seen
    assert all(w["web-stable"] + w["web-canary"] == 100 for w in split), weights_seen
    canary = [w["web-canary"] for w in split]
    assert canary and canary == sorted(canary) and canary[0] == 30, weights_seen
    _until(
        kubectl,
        namespace,
        tmp_path,
        lambda: _weights(kubectl, namespace) == {"web-stable": 1},
        "all traffic back on the Git name's Service",
    )
    assert _selector(kubectl, namespace, "web-stable") == {"app": "web"}  # idle: as in Git
    web = kubectl.get("deployment", "web", namespace)
    assert web is not None
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.example/web:{v2}"
    _until(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            _endpoints(kubectl, namespace, "web-stable")
            == _pod_ips(kubectl, namespace, f"app=web,version={v2}")
            and len(_endpoints(kubectl, namespace, "web-stable")) == 4
        ),
        "the stable Service on v2's four pods",
    )
