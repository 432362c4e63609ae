"""More of the agent: ignore rules for fields other controllers own, dependsOn ordering, the
install manifests, bootstrap, and the read/steer commands (get, events, reconcile)."""

from __future__ import annotations

import json
import subprocess

import httpx
import yaml

from tests.agent.conftest import app_condition, apply_yaml, source_and_app, wait_for
from tests.agent.test_agent import signed as signed_webhook
from tests.conftest import Cli, GitRepo, Kubectl, configmaps_only_service_account
from tests.sync.manifests import configmap, deployment
from tests.sync.manifests import secret as secret_manifest
from tether.agent import install
from tether.agent.settings import in_shard


def test_ignored_fields_are_left_to_their_controller(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("d.yaml", deployment("api", replicas=1)).commit()
    extra = "  ignoreDifferences:\n    - {group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}\n"
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), extra=extra))
    start_agent()
    wait_for(
        lambda: (app_condition(kubectl, namespace, "web", "Ready") or {}).get("status") == "True",
        60,
        "Ready",
    )
    kubectl("scale", "-n", namespace, "deployment/api", "--replicas=3")  # as an HPA would
    kubectl(
        "patch",
        "-n",
        namespace,
        "deployment/api",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"registry.example.com/app:hacked"}]}}}}',
    )

    def image() -> str:
        return kubectl.get("deployment", "api", namespace)["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]

    wait_for(lambda: image() == "registry.example.com/app:1.0", 30, "image restored")
    assert kubectl.get("deployment", "api", namespace)["spec"]["replicas"] == 3


def test_depends_on_orders_apps(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("db/cm.yaml", configmap("db")).write("web/cm.yaml", configmap("web")).commit()
    apply_yaml(
        kubectl,
        f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: repo, namespace: {namespace}}}
spec: {{url: "{repo.root}", interval: 1h}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec: {{sourceRef: {{name: repo}}, path: web, dependsOn: [{{name: db}}]}}
""",
    )
    start_agent()
    condition = wait_for(lambda: app_condition(kubectl, namespace, "web", "Ready"), 30, "web waits")
    assert condition["reason"] == "DependencyNotReady" and "db" in condition["message"]
    assert kubectl.get("configmap", "web", namespace) is None
    apply_yaml(
        kubectl,
        f"""apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: db, namespace: {namespace}}}
spec: {{sourceRef: {{name: repo}}, path: db}}
""",
    )
    wait_for(lambda: kubectl.get("configmap", "web", namespace), 60, "web synced after db")
    db = kubectl.get("configmap", "db", namespace)
    web = kubectl.get("configmap", "web", namespace)
    assert db["metadata"]["creationTimestamp"] <= web["metadata"]["creationTimestamp"]


def test_get_events_and_reconcile_commands(
    start_agent, cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("cm.yaml", configmap("settings", level="info")).commit("first")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    agent = start_agent()
    wait_for(
        lambda: (app_condition(kubectl, namespace, "web", "Ready") or {}).get("status") == "True",
        60,
        "Ready",
    )
    wait_for(  # health is written when the health wait after the sync ends
        lambda: kubectl.get("apps.tether.dev", "web", namespace)["status"].get("health"),
        60,
        "health recorded",
    )
    kube = f"--kubeconfig={kubectl.kubeconfig}"
    code, out, _ = cli("get", "apps", "-n", namespace, "-o", "json", kube)
    rows = json.loads(out)
    assert (
        code == 0
        and rows[0]["name"] == "web"
        and rows[0]["ready"] == "True"
        and rows[0]["health"] == "Healthy"
    )
    code, out, _ = cli("get", "app", "web", "-n", namespace, "-o", "json", kube)
    detail = json.loads(out)
    assert (
        code == 0
        and detail["objects"][0]["name"] == "settings"
        and detail["objects"][0]["sync"] == "Synced"
    )
    code, out, _ = cli("events", "--for", "app/web", "-n", namespace, "-o", "json", kube)
    assert code == 0 and "Synced" in {e["reason"] for e in json.loads(out)}
    repo.write("cm.yaml", configmap("settings", level="debug")).commit("second")
    code, _, err = cli("reconcile", "app", "web", "-n", namespace, "--with-source", kube)
    assert code == 0, err
    wait_for(
        lambda: (
            (kubectl.get("configmap", "settings", namespace) or {}).get("data")
            == {"level": "debug"}
        ),
        30,
        "reconciled on request",
    )
    logs = [json.loads(line) for line in agent.log.read_text().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "became leader" for entry in logs) and all(
        "level" in e and "time" in e for e in logs
    )


def test_install_export_is_valid_and_least_privilege(kubectl: Kubectl, namespace: str) -> None:
    objects = install.manifests(namespace=namespace)
    kinds = [o["kind"] for o in objects]
    assert (
        {o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"}
        == {
            "gitsources.tether.dev",
            "helmsources.tether.dev",
            "ocisources.tether.dev",
            "apps.tether.dev",
            "alertproviders.tether.dev",
            "projects.tether.dev",
        }
        and "Deployment" in kinds
        and "ServiceAccount" in kinds
    )
    controller = next(
        o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "tether-agent"
    )
    assert all("*" not in rule["verbs"] for rule in controller["rules"])
    docs = [o for o in objects if o["kind"] not in ("Namespace", "CustomResourceDefinition")]
    result = kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(docs), check=False
    )
    assert result.returncode == 0, result.stderr


def test_bootstrap_installs_and_creates_the_root_app(
    cli: Cli, kubectl: Kubectl, tether_crds
) -> None:
    code, out, err = cli(
        "bootstrap",
        "--source",
        "https://git.example.com/org/platform.git",
        "--path",
        "clusters/dev",
        f"--kubeconfig={kubectl.kubeconfig}",
    )
    assert code == 0, err
    root = kubectl.get("apps.tether.dev", "root", "tether-system")
    assert root["spec"]["path"] == "clusters/dev" and root["spec"]["syncPolicy"]["prune"] is True
    assert kubectl.get("gitsources.tether.dev", "platform", "tether-system")["spec"][
        "url"
    ].endswith("platform.git")
    assert kubectl.get("deployment", "tether-agent", "tether-system") is not None
    code, out, _ = cli("install", "--export")
    assert code == 0 and "kind: CustomResourceDefinition" in out and "tether-agent-secrets" in out
    # the root App is applied as the platform's identity, through the Project the install names
    project = kubectl.get("projects.tether.dev", root["spec"]["project"], "tether-system")
    assert project["spec"]["serviceAccountName"] == "tether-platform"


def test_a_project_limits_what_an_app_may_create(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("cm.yaml", configmap("allowed")).write(
        "secret.yaml", secret_manifest("forbidden")
    ).commit()
    configmaps_only_service_account(kubectl, namespace)
    apply_yaml(
        kubectl,
        source_and_app(namespace, str(repo.root), extra="  project: team-a\n")
        + f"""---
apiVersion: tether.dev/v1alpha1
kind: Project
metadata: {{name: team-a, namespace: {namespace}}}
spec: {{destinations: ["{namespace}"], kinds: {{deny: [Secret]}}}}
""",
    )
    start_agent()

    def refused(text: str) -> dict | None:
        ready = app_condition(kubectl, namespace, "web", "Ready") or {}
        return (
            ready if ready.get("status") == "False" and text in ready.get("message", "") else None
        )

    ready = wait_for(lambda: refused("refused by tenancy rules"), 60, "tenancy refusal")
    assert "may not create Secret objects" in ready["message"]
    assert kubectl.get("configmap", "allowed", namespace) is None

    # Tether's own check off (no kind limits), the Project's ServiceAccount on: the API server refuses.
    kubectl(
        "patch",
        "projects.tether.dev",
        "team-a",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"kinds":null,"serviceAccountName":"deployer"}}',
    )
    kubectl(
        "annotate",
        "apps.tether.dev",
        "web",
        "-n",
        namespace,
        "tether.dev/reconcile-requested-at=now",
        "--overwrite",
    )
    # (the Secret is named "forbidden": wait for the identity, which only the new refusal names)
    deployer = f"system:serviceaccount:{namespace}:deployer"
    ready = wait_for(lambda: refused(deployer), 60, "RBAC refusal")
    assert "forbidden" in ready["message"].replace('"forbidden"', "")
    assert kubectl.get("configmap", "allowed", namespace) is None


def test_only_signed_commits_are_deployed(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl, tmp_path
) -> None:
    key = tmp_path / "signer"
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "release@example.com",
            "-f",
            str(key),
        ],
        check=True,
    )
    public = key.with_suffix(".pub").read_text().strip()
    kubectl(
        "create",
        "secret",
        "generic",
        "trusted-keys",
        "-n",
        namespace,
        f"--from-literal=release.pub={public}",
    )
    repo.write("cm.yaml", configmap("settings", level="signed"))
    sign = [
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={key}",
        "-c",
        "user.name=Rel",
        "-c",
        "user.email=r@example.com",
    ]
    subprocess.run(["git", *sign, "add", "-A"], cwd=repo.root, check=True)
    subprocess.run(
        ["git", *sign, "commit", "-q", "-S", "-m", "signed release"], cwd=repo.root, check=True
    )
    apply_yaml(
        kubectl,
        source_and_app(namespace, str(repo.root)).replace(
            "interval: 1h}", "interval: 1h, verify: {secretRef: {name: trusted-keys}}}", 1
        ),
    )
    agent = start_agent()
    wait_for(
        lambda: (
            (kubectl.get("configmap", "settings", namespace) or {}).get("data")
            == {"level": "signed"}
        ),
        60,
        "signed commit applied",
    )
    source = kubectl.get("gitsources.tether.dev", "repo", namespace)
    assert "verified ssh signature" in source["status"]["artifact"]["signature"]

    repo.write("cm.yaml", configmap("settings", level="unsigned")).commit("sneaky unsigned change")
    body = json.dumps({"url": str(repo.root)}).encode()
    httpx.post(f"{agent.url}/hooks/generic", content=body, headers=signed_webhook(body))

    def refused() -> dict | None:
        status = (kubectl.get("gitsources.tether.dev", "repo", namespace) or {}).get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
        return ready if ready.get("status") == "False" else None

    ready = wait_for(refused, 30, "unsigned commit refused")
    assert "unsigned" in ready["message"]
    assert kubectl.get("configmap", "settings", namespace)["data"] == {"level": "signed"}


def test_manual_apps_sync_only_on_request(
    start_agent, cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("cm.yaml", configmap("settings", level="one")).commit()
    apply_yaml(
        kubectl,
        source_and_app(namespace, str(repo.root)).replace(
            "{prune: true,", "{automated: false, prune: true,"
        ),
    )
    start_agent()
    ready = wait_for(lambda: app_condition(kubectl, namespace, "web", "Ready"), 30, "manual status")
    assert (
        ready["reason"] == "ManualSync" and kubectl.get("configmap", "settings", namespace) is None
    )
    code, _, err = cli(
        "reconcile", "app", "web", "-n", namespace, f"--kubeconfig={kubectl.kubeconfig}"
    )
    assert code == 0, err
    wait_for(lambda: kubectl.get("configmap", "settings", namespace), 30, "synced on request")
    kubectl("patch", "-n", namespace, "configmap/settings", "-p", '{"data":{"level":"hand"}}')
    wait_for(
        lambda: (app_condition(kubectl, namespace, "web", "Drifted") or {}).get("status") == "True",
        30,
        "drift reported",
    )
    assert kubectl.get("configmap", "settings", namespace)["data"] == {
        "level": "hand"
    }  # not healed


def test_sharding_splits_apps_stably() -> None:
    keys = [f"team-{t}/app-{a}" for t in range(10) for a in range(50)]
    shards = [[k for k in keys if in_shard(k, i, 3)] for i in range(3)]
    assert sorted(k for shard in shards for k in shard) == sorted(
        keys
    )  # each app in exactly one shard
    assert all(len(s) > 100 for s in shards)  # and spread out
    assert shards == [
        [k for k in keys if in_shard(k, i, 3)] for i in range(3)
    ]  # the same every time
