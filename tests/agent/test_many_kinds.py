"""An app of 35 kinds (19 built-in, 15 custom, and CRDs): the agent opens one watch per kind,
and still syncs, heals and renews its Lease (watches used to hold the connections that requests
needed, so such an app was never synced)."""

from __future__ import annotations

import json

from tests.agent.conftest import (
    app_ready,
    apply_yaml,
    log_entries,
    platform_project,
    source_and_app,
    wait_for,
)
from tests.agent.kinds import CUSTOM_KINDS, kind_count, many_kinds
from tests.conftest import GitRepo, Kubectl


def test_an_app_of_many_kinds_syncs_heals_and_keeps_the_lease(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    suffix = namespace
    repo.write("app.yaml", many_kinds(suffix)).commit("many kinds")
    # its CRDs are cluster-scoped: the App needs a Project that allows them
    project = platform_project(kubectl, namespace)
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), extra=project))
    # A Lease of 15 s (client-go's default) rather than the fixture's 3 s: renewal must not be
    # blocked by the watches, and a CPU-starved test machine must not pass for such a block.
    agent = start_agent("agent-a", "--lease-duration=15")
    wait_for(lambda: app_ready(kubectl, namespace), 120, "the app of many kinds to be Ready")
    inventory = kubectl.get("apps.tether.dev", "web", namespace)["status"]["inventory"]
    assert len(inventory["groupKinds"]) == kind_count() >= 30

    lease_before = kubectl.get("lease", "tether-agent", namespace)["spec"]["renewTime"]
    kubectl("patch", "configmap", "settings", "-n", namespace, "-p", '{"data":{"level":"debug"}}')
    kubectl(
        "patch",
        f"widget{CUSTOM_KINDS - 1}.k{CUSTOM_KINDS - 1}.{suffix}.test",
        "widget",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"size":"huge"}}',
    )
    kubectl("delete", "role", "reader", "-n", namespace)
    wait_for(
        lambda: (
            (kubectl.get("configmap", "settings", namespace) or {}).get("data") == {"level": "info"}
        ),
        60,
        "the ConfigMap edit healed",
    )
    wait_for(
        lambda: (
            (
                kubectl.get(
                    f"widget{CUSTOM_KINDS - 1}.k{CUSTOM_KINDS - 1}.{suffix}.test",
                    "widget",
                    namespace,
                )
                or {}
            )
            .get("spec", {})
            .get("size")
            == "small"
        ),
        60,
        "the custom resource edit healed",
    )
    wait_for(lambda: kubectl.get("role", "reader", namespace), 60, "the deleted Role restored")
    wait_for(
        lambda: (
            kubectl.get("lease", "tether-agent", namespace)["spec"]["renewTime"] != lease_before
        ),
        30,
        "the Lease renewed",
    )
    entries = log_entries(agent)
    text = json.dumps(entries)
    assert "PoolTimeout" not in text
    assert not [e for e in entries if e.get("msg") == "stopped leading"]
    assert agent.process.poll() is None
