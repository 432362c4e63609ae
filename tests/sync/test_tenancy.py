"""Tenancy at sync time on the real control plane: a team's limits from tether.yaml refuse an
app before anything is applied; with impersonation and no Tether check, the API server's RBAC
refuses it instead."""

from __future__ import annotations

import json
import uuid

from tests.conftest import Cli, GitRepo, Kubectl, configmaps_only_service_account
from tests.sync.manifests import configmap, secret

CLUSTER_ROLE = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: sneaky-%s}
rules: []
"""


def tether_yaml(namespace: str) -> str:
    return f"""environments: [dev]
teams:
  - name: web
    paths: [apps/web]
    namespaces: [{namespace}]
    kinds:
      deny: [Secret]
"""


def sync(cli: Cli, repo: GitRepo, path: str, namespace: str, *extra: str) -> tuple[int, dict]:
    code, out, _ = cli(
        "sync",
        "--source",
        str(repo.root),
        "--path",
        path,
        "--app",
        f"web-{namespace}",
        "-n",
        namespace,
        "--timeout",
        "0",
        "-o",
        "json",
        *extra,
    )
    return code, json.loads(out)


def test_team_limits_refuse_before_anything_is_applied(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    other = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", other)
    repo.write("tether.yaml", tether_yaml(namespace))
    repo.write("apps/web/ok.yaml", configmap("ok"))
    repo.write(
        "apps/web/elsewhere.yaml",
        configmap("elsewhere").replace("metadata:\n", f"metadata:\n  namespace: {other}\n"),
    )
    repo.write("apps/web/role.yaml", CLUSTER_ROLE % namespace).write(
        "apps/web/secret.yaml", secret("s", k="v")
    )
    repo.write("apps/other/cm.yaml", configmap("other")).commit()

    code, report = sync(cli, repo, "apps/web", namespace, "--team", "web")
    assert code == 2
    error = report["error"]
    assert "nothing was applied" in error and "refused by tenancy rules" in error
    assert (
        f"namespace '{other}' is not one of team 'web'" in error
        and "apps/web/elsewhere.yaml" in error
    )
    assert "may not create cluster-scoped objects" in error and "ClusterRole" in error
    assert "may not create Secret objects" in error
    assert kubectl.get("configmap", "ok", namespace) is None
    assert kubectl.get("configmap", "elsewhere", other) is None

    code, report = sync(cli, repo, "apps/other", namespace, "--team", "web")
    assert code == 2 and "outside what team 'web' may deploy from" in report["error"]

    repo.remove("apps/web/elsewhere.yaml").remove("apps/web/role.yaml").remove(
        "apps/web/secret.yaml"
    ).commit("comply")
    code, report = sync(cli, repo, "apps/web", namespace, "--team", "web")
    assert code == 0, report["error"]
    assert kubectl.get("configmap", "ok", namespace) is not None

    code, report = sync(cli, repo, "apps/web", namespace, "--team", "nobody")
    assert code == 2 and "declares no such team" in report["error"]


def test_impersonation_lets_the_api_server_refuse(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    configmaps_only_service_account(kubectl, namespace)
    repo.write("cm.yaml", configmap("allowed")).write(
        "secret.yaml", secret("forbidden", k="v")
    ).commit()

    code, report = sync(cli, repo, ".", namespace, "--as-service-account", f"{namespace}/deployer")
    assert code == 2
    assert (
        "forbidden" in report["error"].lower()
        and f"system:serviceaccount:{namespace}:deployer" in report["error"]
    )
    assert kubectl.get("configmap", "allowed", namespace) is None
    assert kubectl.get("secret", "forbidden", namespace) is None

    repo.remove("secret.yaml").commit()
    code, report = sync(cli, repo, ".", namespace, "--as-service-account", f"{namespace}/deployer")
    assert code == 0, report["error"]
    created = kubectl.get("configmap", "allowed", namespace)
    assert created is not None
    shown = kubectl(
        "get", "configmap", "allowed", "-n", namespace, "-o", "json", "--show-managed-fields"
    ).stdout
    assert "tether" in {m["manager"] for m in json.loads(shown)["metadata"]["managedFields"]}
