"""An App's lifecycle: deleting it deletes what it applied (through the agent's finalizer) when
it prunes, an annotation orphans the objects instead, and an app started with ``tether sync``
is handed to the agent with nothing deleted or re-created."""

from __future__ import annotations

from tests.agent.conftest import app_ready, apply_yaml, source_and_app, wait_for
from tests.conftest import Cli, GitRepo, Kubectl
from tests.sync.manifests import configmap, deployment


def _objects(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    found = {}
    for kind in ("configmap/settings", "deployment/api"):
        obj = kubectl.get(*kind.split("/"), namespace)
        if obj:
            found[kind] = obj["metadata"]["uid"]
    return found


def test_deleting_an_app_deletes_what_it_applied(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("cm.yaml", configmap("settings", level="info")).write(
        "d.yaml", deployment("api", replicas=1)
    ).commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    start_agent()
    wait_for(lambda: app_ready(kubectl, namespace), 60, "Ready")
    app = kubectl.get("apps.tether.dev", "web", namespace)
    assert "tether.dev/cleanup" in app["metadata"]["finalizers"]
    assert set(_objects(kubectl, namespace)) == {"configmap/settings", "deployment/api"}

    kubectl("delete", "apps.tether.dev", "web", "-n", namespace, "--wait=false")
    wait_for(lambda: not _objects(kubectl, namespace), 60, "the app's objects deleted")
    wait_for(lambda: kubectl.get("apps.tether.dev", "web", namespace) is None, 30, "App gone")
    assert kubectl.get("configmap", f"{namespace}.web", "tether-system") is None
    reasons = kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}")
    assert "Deleted" in reasons.stdout.split()
    assert "DriftDetected" not in reasons.stdout.split()


def test_the_orphan_annotation_keeps_the_objects(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("cm.yaml", configmap("settings", level="info")).commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    start_agent()
    wait_for(lambda: app_ready(kubectl, namespace), 60, "Ready")
    before = _objects(kubectl, namespace)
    kubectl(
        "annotate", "apps.tether.dev", "web", "-n", namespace, "tether.dev/deletion-policy=orphan"
    )
    kubectl("delete", "apps.tether.dev", "web", "-n", namespace, "--wait=false")
    wait_for(lambda: kubectl.get("apps.tether.dev", "web", namespace) is None, 30, "App gone")
    assert (
        _objects(kubectl, namespace)
        == before
        == {"configmap/settings": before["configmap/settings"]}
    )


def test_an_app_synced_with_the_cli_is_handed_to_the_agent_untouched(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl, cli: Cli
) -> None:
    repo.write("cm.yaml", configmap("settings", level="info")).write(
        "d.yaml", deployment("api", replicas=1)
    ).commit()
    code, out, err = cli(
        "sync",
        "--source",
        str(repo.root),
        "--app",
        "web",
        "-n",
        namespace,
        "--prune",
        "--timeout",
        "0",
    )
    assert code == 0, out + err
    before = _objects(kubectl, namespace)
    assert len(before) == 2
    commit = repo.write("cm.yaml", configmap("settings", level="debug")).commit("agent's turn")

    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    start_agent()
    wait_for(lambda: app_ready(kubectl, namespace, revision=commit), 60, "the agent's first sync")
    assert kubectl.get("configmap", "settings", namespace)["data"] == {"level": "debug"}
    assert _objects(kubectl, namespace) == before  # same objects: nothing deleted or re-created
    code, out, err = cli("history", "web", "-n", namespace)
    assert code == 0 and "agent/" in out and commit[:7] in out
