"""The foundation's sync behaviour, end to end on the real local control plane."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import Cli, GitRepo, Kubectl
from tests.sync.manifests import CRD, WIDGET, configmap, deployment, secret, service


def sync(cli: Cli, repo: GitRepo, app: str, namespace: str, *extra: str) -> tuple[int, dict]:
    code, out, _err = cli(
        "sync",
        "--source",
        str(repo.root),
        "--app",
        app,
        "-n",
        namespace,
        "--timeout",
        "60s",
        "-o",
        "json",
        *extra,
    )
    return code, json.loads(out)


def actions(report: dict) -> dict[str, str]:
    return {f"{c['kind']}/{c['name']}": c["action"] for c in report["changes"]}


def test_first_sync_creates_everything_and_second_sync_writes_nothing(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("web/deploy.yaml", deployment("web", replicas=2))
    repo.write("web/svc.yaml", service("web")).write(
        "web/cm.yaml", configmap("web-config", mode="blue")
    )
    repo.commit("add web")

    code, first = sync(cli, repo, "web", namespace)
    assert code == 0, first["error"]
    assert actions(first) == {
        "Deployment/web": "created",
        "Service/web": "created",
        "ConfigMap/web-config": "created",
    }
    assert first["health"]["status"] == "Healthy"
    deploy = kubectl.get("deployment", "web", namespace)
    assert deploy["status"]["readyReplicas"] == 2
    versions = {
        k: kubectl.get(k, n, namespace)["metadata"]["resourceVersion"]
        for k, n in (("deployment", "web"), ("service", "web"), ("configmap", "web-config"))
    }

    code, second = sync(cli, repo, "web", namespace)
    assert code == 0
    assert set(actions(second).values()) == {"unchanged"}
    for (kind, name), version in zip(
        (("deployment", "web"), ("service", "web"), ("configmap", "web-config")),
        versions.values(),
        strict=True,
    ):
        assert kubectl.get(kind, name, namespace)["metadata"]["resourceVersion"] == version


def test_changed_field_is_configured_and_removed_object_is_pruned(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("a.yaml", configmap("a", k="1")).write("b.yaml", configmap("b", k="1")).commit()
    assert sync(cli, repo, "ab", namespace, "--prune")[0] == 0

    repo.write("a.yaml", configmap("a", k="2")).remove("b.yaml").commit("change a, drop b")
    code, report = sync(cli, repo, "ab", namespace, "--prune")
    assert code == 0, report["error"]
    assert actions(report) == {"ConfigMap/a": "configured", "ConfigMap/b": "pruned"}
    assert kubectl.get("configmap", "a", namespace)["data"] == {"k": "2"}
    assert kubectl.get("configmap", "b", namespace) is None


def test_without_prune_removed_objects_stay(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("a.yaml", configmap("a")).write("b.yaml", configmap("b")).commit()
    assert sync(cli, repo, "keep", namespace)[0] == 0
    repo.remove("b.yaml").commit()
    code, report = sync(cli, repo, "keep", namespace)
    assert code == 0 and "pruned" not in actions(report).values()
    assert kubectl.get("configmap", "b", namespace) is not None


def test_prune_disabled_annotation_keeps_object(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("a.yaml", configmap("a")).write("b.yaml", configmap("b")).commit()
    assert sync(cli, repo, "pd", namespace, "--prune")[0] == 0
    kubectl("annotate", "-n", namespace, "configmap/b", "tether.dev/prune=disabled")
    repo.remove("b.yaml").commit()
    code, report = sync(cli, repo, "pd", namespace, "--prune")
    assert code == 0 and actions(report) == {"ConfigMap/a": "unchanged"}
    assert kubectl.get("configmap", "b", namespace) is not None


def test_empty_render_refuses_to_prune(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("a.yaml", configmap("a")).commit()
    assert sync(cli, repo, "empty", namespace, "--prune")[0] == 0
    repo.remove("a.yaml").write("README.md", "nothing here").commit("oops, everything removed")

    code, report = sync(cli, repo, "empty", namespace, "--prune")
    assert code == 2
    assert "--allow-empty" in report["error"]
    assert kubectl.get("configmap", "a", namespace) is not None

    code, report = sync(cli, repo, "empty", namespace, "--prune", "--allow-empty")
    assert code == 0 and actions(report) == {"ConfigMap/a": "pruned"}
    assert kubectl.get("configmap", "a", namespace) is None


def test_malformed_yaml_leaves_cluster_untouched(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("a.yaml", configmap("a", k="1")).commit()
    assert sync(cli, repo, "bad", namespace, "--prune")[0] == 0
    repo.write("a.yaml", configmap("a", k="2")).write("b.yaml", configmap("b"))
    repo.write(
        "broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"
    ).commit()

    code, report = sync(cli, repo, "bad", namespace, "--prune")
    assert code == 2
    assert "broken.yaml:" in report["error"]
    assert kubectl.get("configmap", "a", namespace)["data"] == {"k": "1"}
    assert kubectl.get("configmap", "b", namespace) is None


def test_invalid_object_is_refused_by_dry_run_and_nothing_is_written(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("a.yaml", configmap("good"))
    repo.write("b.yaml", deployment("bad").replace("replicas: 1", "replicas: many")).commit()
    code, report = sync(cli, repo, "invalid", namespace)
    assert code == 2
    assert "Deployment.apps/" in report["error"] and "b.yaml" in report["error"]
    assert kubectl.get("configmap", "good", namespace) is None


def test_crd_and_its_custom_resource_in_one_sync(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    repo.write("crd.yaml", CRD.format(group=group)).write(
        "widget.yaml", WIDGET.format(group=group)
    ).commit()
    # No controller writes a Widget's status: judged after a grace period, shortened here.
    code, report = sync(cli, repo, "widgets", namespace, "--health-grace", "2s")
    assert code == 0, report["error"]
    assert actions(report) == {
        "CustomResourceDefinition/widgets." + group: "created",
        "Widget/gadget": "created",
    }
    widget = next(o for o in report["health"]["objects"] if o["kind"] == "Widget")
    assert widget["status"] == "Healthy" and "kind without a controller" in widget["message"]
    assert kubectl.get(f"widgets.{group}", "gadget", namespace)["spec"] == {"size": 3}
    code, again = sync(cli, repo, "widgets", namespace, "--health-grace", "2s")
    assert code == 0 and set(actions(again).values()) == {"unchanged"}


def test_namespace_created_by_the_same_sync(cli: Cli, repo: GitRepo, kubectl: Kubectl) -> None:
    ns = f"t-{uuid.uuid4().hex[:10]}"
    repo.write("ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
    repo.write(
        "cm.yaml", configmap("inside").replace("metadata:\n", f"metadata:\n  namespace: {ns}\n")
    ).commit()
    code, report = sync(cli, repo, f"app-{ns}", ns)
    assert code == 0, report["error"]
    assert actions(report) == {f"Namespace/{ns}": "created", "ConfigMap/inside": "created"}


def test_diff_exit_codes(cli: Cli, repo: GitRepo, namespace: str) -> None:
    repo.write("a.yaml", configmap("a", k="1")).commit()
    args = ("diff", "--source", str(repo.root), "--app", "d", "-n", namespace)
    code, out, _ = cli(*args)
    assert code == 1 and "created ConfigMap/" in out
    assert sync(cli, repo, "d", namespace)[0] == 0
    code, out, _ = cli(*args)
    assert code == 0, out
    repo.write("a.yaml", configmap("a", k="2")).commit()
    code, out, _ = cli(*args)
    assert code == 1
    assert "-  k: '1'" in out and "+  k: '2'" in out
    code, _, err = cli(
        "diff", "--source", str(repo.root), "--ref", "no-such-branch", "--app", "d", "-n", namespace
    )
    assert code == 2 and "no-such-branch" in err


def test_secret_values_are_never_printed(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("s.yaml", secret("db", password="hunter2-very-secret")).commit()
    args = ("diff", "--source", str(repo.root), "--app", "s", "-n", namespace)
    code, out, err = cli(*args)
    assert code == 1 and "hunter2" not in out + err and "aHVudGVyMi" not in out + err
    code, out, err = cli(
        "sync", "--source", str(repo.root), "--app", "s", "-n", namespace, "-o", "json", "-v"
    )
    assert code == 0 and "hunter2" not in out + err
    repo.write("s.yaml", secret("db", password="changed-secret-value")).commit()
    code, out, err = cli(*args)
    assert code == 1
    assert "changed-secret-value" not in out + err and "hunter2" not in out + err
    assert "masked, changed" in out
    assert kubectl.get("secret", "db", namespace)["data"]["password"]  # it is there, just not shown


def test_hand_edit_shows_in_diff_and_sync_reverts_it(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("d.yaml", deployment("api", replicas=1)).write(
        "c.yaml", configmap("api", level="info")
    ).commit()
    assert sync(cli, repo, "drift", namespace)[0] == 0
    kubectl("scale", "-n", namespace, "deployment/api", "--replicas=4")
    kubectl("patch", "-n", namespace, "configmap/api", "-p", '{"data":{"level":"debug"}}')

    code, out, _ = cli("diff", "--source", str(repo.root), "--app", "drift", "-n", namespace)
    assert code == 1
    assert "-  replicas: 4" in out and "+  replicas: 1" in out
    assert "-  level: debug" in out and "+  level: info" in out

    code, report = sync(cli, repo, "drift", namespace)
    assert code == 0 and actions(report) == {
        "Deployment/api": "configured",
        "ConfigMap/api": "configured",
    }
    assert kubectl.get("deployment", "api", namespace)["spec"]["replicas"] == 1
    assert kubectl.get("configmap", "api", namespace)["data"] == {"level": "info"}
    assert cli("diff", "--source", str(repo.root), "--app", "drift", "-n", namespace)[0] == 0


def test_object_of_another_app_is_never_touched(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("shared.yaml", configmap("shared", owner="first")).commit()
    assert sync(cli, repo, "first", namespace)[0] == 0
    repo.write("shared.yaml", configmap("shared", owner="second")).commit()
    code, report = sync(cli, repo, "second", namespace)
    assert code == 2
    assert f"belongs to app '{namespace}.first'" in report["error"]
    assert kubectl.get("configmap", "shared", namespace)["data"] == {"owner": "first"}


def test_inventory_is_an_applyset_kubectl_can_read(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("a.yaml", configmap("a")).write("d.yaml", deployment("d")).commit()
    assert sync(cli, repo, "inv", namespace)[0] == 0
    parent = kubectl.get("configmap", f"{namespace}.inv", "tether-system")
    applyset_id = parent["metadata"]["labels"]["applyset.kubernetes.io/id"]
    assert (
        parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
        == "ConfigMap,Deployment.apps"
    )
    listed = kubectl(
        "get",
        "configmaps,deployments",
        "-n",
        namespace,
        "-l",
        f"applyset.kubernetes.io/part-of={applyset_id}",
        "-o",
        "name",
    ).stdout.split()
    assert sorted(listed) == ["configmap/a", "deployment.apps/d"]


def test_status_and_history(cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl) -> None:
    repo.write("d.yaml", deployment("st")).write("c.yaml", configmap("st")).commit("first version")
    assert sync(cli, repo, "st", namespace)[0] == 0
    kubectl("patch", "-n", namespace, "configmap/st", "-p", '{"data":{"x":"y"}}')
    kubectl(
        "patch",
        "-n",
        namespace,
        "configmap/st",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/data"}]',
        check=False,
    )
    code, out, _ = cli("status", "st", "-n", namespace, "-o", "json")
    assert code == 0
    status = json.loads(out)
    by_name = {o["kind"]: o for o in status["objects"]}
    assert (
        by_name["Deployment"]["health"] == "Healthy" and by_name["Deployment"]["sync"] == "Synced"
    )
    assert by_name["ConfigMap"]["sync"] == "OutOfSync"

    code, out, _ = cli("history", "st", "-n", namespace, "-o", "json")
    records = json.loads(out)
    assert code == 0 and len(records) == 1
    assert records[0]["revision"]["subject"] == "first version"
    assert records[0]["result"] == "succeeded"
    assert {c["action"] for c in records[0]["changes"]} == {"created"}


@pytest.mark.parametrize("bad_ref", ["does-not-exist"])
def test_unknown_ref_is_a_clear_error(
    cli: Cli, repo: GitRepo, namespace: str, bad_ref: str
) -> None:
    repo.write("a.yaml", configmap("a")).commit()
    code, report = sync(cli, repo, "ref", namespace, "--ref", bad_ref)
    assert code == 2 and bad_ref in report["error"] and str(repo.root) in report["error"]
