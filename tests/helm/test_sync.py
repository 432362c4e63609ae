"""Charts synced with ``tether sync`` / ``tether diff`` on the real control plane.

The chart (tests/helm/charts.py) has a CRD, a Deployment, a Secret whose value comes from a
SOPS-encrypted values file kept in Git, a pre-install/pre-upgrade Job hook, a post-install hook
and a test hook. It installs from a Helm repository; ``diff`` is clean afterwards; a new chart
version in range is applied; a template the new version dropped is pruned; the decrypted value
never shows. A chart kept in Git syncs the same way, and a failing render applies nothing.
"""

from __future__ import annotations

import base64
import json
import uuid

from tests.conftest import Cli, GitRepo, Kubectl
from tests.helm.charts import write_chart
from tests.helm.conftest import HelmRepository
from tether.secrets import encrypt_document, generate_identity

PASSWORD = "chart-db-password-8c1e"


def unique_group() -> str:
    return f"g{uuid.uuid4().hex[:8]}.tests.tether.dev"


def encrypted_values(repo: GitRepo, recipient: str, password: str = PASSWORD) -> None:
    text = f"db:\n  password: {password}\nreplicas: 2\n"
    repo.write("values/prod.yaml", encrypt_document(text, "yaml", [recipient], source="prod.yaml"))


def run(cli: Cli, command: str, *args: str) -> tuple[int, dict, str]:
    code, out, err = cli(command, *args, "-o", "json")
    return code, json.loads(out) if out.strip() else {}, out + err


def actions(report: dict) -> dict[str, str]:
    return {f"{c['kind']}/{c['name']}": c["action"] for c in report["changes"]}


def decoded_secret(kubectl: Kubectl, name: str, namespace: str) -> str:
    secret = kubectl.get("secret", name, namespace)
    assert secret is not None
    return base64.b64decode(secret["data"]["password"]).decode()


def test_a_chart_from_a_helm_repository_installs_upgrades_and_prunes(
    cli: Cli,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    helm_repository: HelmRepository,
    tmp_path,
) -> None:
    group = unique_group()
    identity, recipient = generate_identity()
    key_file = tmp_path / "age.key"
    key_file.write_text(identity + "\n")
    encrypted_values(repo, recipient)
    repo.commit("values for the shop chart")
    helm_repository.publish_shop("1.0.0", group, extra=True)
    common = [
        "--chart", f"{helm_repository.url}/shop", "--version", ">=1.0.0",
        "--source", str(repo.root), "--values", "values/prod.yaml",
        "--age-key-file", str(key_file), "--app", "shop", "-n", namespace,
    ]  # fmt: skip

    code, first, shown = run(cli, "sync", *common, "--prune", "--timeout", "60s")
    assert code == 0, first.get("error")
    assert actions(first) == {
        f"CustomResourceDefinition/widgets.{group}": "created",
        "Job/shop-migrate": "created",
        "Deployment/shop-web": "created",
        "Secret/shop-db": "created",
        "ConfigMap/shop-capabilities": "created",
        "ConfigMap/shop-extra": "created",
        "ConfigMap/shop-installed": "created",
    }
    assert first["health"]["status"] == "Healthy"
    assert first["revision"]["ref"] == "chart shop 1.0.0"
    assert first["revision"]["commit"].startswith("sha256:")
    assert decoded_secret(kubectl, "shop-db", namespace) == PASSWORD
    job = kubectl.get("job", "shop-migrate", namespace)
    assert job["status"].get("succeeded") == 1  # the pre-install hook ran to completion
    deployment = kubectl.get("deployment", "shop-web", namespace)
    assert deployment["spec"]["replicas"] == 2  # from the encrypted values file
    assert kubectl.get("pod", "shop-test", namespace) is None  # test hooks never run
    assert kubectl.get("crd", f"widgets.{group}", "") is not None
    capabilities = kubectl.get("configmap", "shop-capabilities", namespace)["data"]
    assert capabilities["probeServed"] == "true"  # the chart's own CRD, as on a helm install
    assert PASSWORD not in shown

    code, diff, shown = run(cli, "diff", *common, "--prune")
    assert code == 0, diff
    assert diff["inSync"] is True
    assert PASSWORD not in shown

    helm_repository.publish_shop("2.0.0", group)  # drops templates/extra.yaml
    code, second, shown = run(cli, "sync", *common, "--prune", "--timeout", "60s")
    assert code == 0, second.get("error")
    assert second["revision"]["ref"] == "chart shop 2.0.0"
    changed = actions(second)
    assert changed["Deployment/shop-web"] == "configured"
    assert changed["ConfigMap/shop-extra"] == "pruned"
    assert changed["ConfigMap/shop-installed"] == "configured"  # the post-upgrade hook
    assert kubectl.get("configmap", "shop-extra", namespace) is None
    assert changed["Job/shop-migrate"] == "configured"  # its pod template is immutable:
    job = kubectl.get("job", "shop-migrate", namespace)  # deleted and created again, and run
    assert (
        job["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example/migrate:2.0.0"
    )
    assert job["status"].get("succeeded") == 1
    image = kubectl.get("deployment", "shop-web", namespace)["spec"]["template"]["spec"]
    assert image["containers"][0]["image"] == "registry.example/shop:2.0.0"
    installed = kubectl.get("configmap", "shop-installed", namespace)
    assert installed["data"] == {"chart": "2.0.0"}
    assert PASSWORD not in shown

    code, diff, _ = run(cli, "diff", *common, "--prune")
    assert (code, diff["inSync"]) == (0, True)
    code, out, _ = cli("history", "shop", "-n", namespace, "-o", "json")
    assert [r["revision"]["ref"] for r in json.loads(out)][:2] == [
        "chart shop 2.0.0",
        "chart shop 1.0.0",
    ]


def test_a_chart_in_git_syncs_and_a_failing_render_applies_nothing(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    group = unique_group()
    write_chart(repo.root / "charts" / "shop", "1.0.0", group)
    repo.write(
        "patches/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-web\nspec:\n  replicas: 3\n",
    )
    commit = repo.write("values/plain.yaml", "db:\n  password: plain-pw-1\n").commit("chart")
    common = ["--source", str(repo.root), "--chart", "charts/shop", "--app", "web", "-n", namespace]

    code, report, _ = run(cli, "sync", *common, "--timeout", "60s")  # no values: required fails
    assert code == 2
    assert "charts/shop/templates/secret.yaml:9" in report["error"]
    assert "db.password is required" in report["error"]
    assert kubectl.get("crd", f"widgets.{group}", "") is None  # nothing was applied

    common += ["--values", "values/plain.yaml", "--post-render-patch", "patches/replicas.yaml"]
    code, report, _ = run(cli, "sync", *common, "--timeout", "60s")
    assert code == 0, report.get("error")
    assert decoded_secret(kubectl, "web-db", namespace) == "plain-pw-1"
    assert kubectl.get("deployment", "web-web", namespace)["spec"]["replicas"] == 3  # patched
    assert report["revision"]["commit"] == commit  # a chart in Git is pinned by the commit
    code, diff, _ = run(cli, "diff", *common)
    assert (code, diff["inSync"]) == (0, True)


def test_a_package_that_does_not_match_its_digest_applies_nothing(
    cli: Cli, namespace: str, kubectl: Kubectl, helm_repository: HelmRepository, tmp_path
) -> None:
    group = unique_group()
    package = helm_repository.publish_shop("1.0.0", group)
    package.write_bytes(package.read_bytes() + b"\0")  # served bytes differ from the index
    values = tmp_path / "values.yaml"
    values.write_text("db:\n  password: local-pw\n")
    args = ["--repo", helm_repository.url, "--chart", "shop", "--values", str(values)]
    code, report, _ = run(cli, "sync", *args, "--app", "shop", "-n", namespace)
    assert code == 2
    assert "has SHA-256" in report["error"] and "nothing was rendered" in report["error"]
    assert kubectl.get("crd", f"widgets.{group}", "") is None
    assert kubectl.get("deployment", "shop-web", namespace) is None


def test_a_pre_install_hook_that_never_gets_healthy_stops_the_rest(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    chart = write_chart(repo.root / "charts" / "shop", "1.0.0", unique_group())
    (chart / "templates" / "hook-migrate.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-wait\n"
        "  annotations:\n    helm.sh/hook: pre-install\nspec:\n"
        "  nodeSelector:\n    no-such-node: 'true'\n"
        "  containers:\n    - name: wait\n      image: registry.example/wait:1\n"
    )
    repo.write("values.yaml", "db:\n  password: pw-hook\n").commit("a hook that cannot run")
    code, report, _ = run(
        cli, "sync", "--source", str(repo.root), "--chart", "charts/shop", "--values",
        "values.yaml", "--app", "web", "-n", namespace, "--timeout", "5s",
    )  # fmt: skip
    assert code == 2
    assert "pre-install/upgrade hook failed: Pod/" in report["error"]
    assert "web-wait" in report["error"]
    assert "the chart's other objects were not applied" in report["error"]
    assert kubectl.get("pod", "web-wait", namespace) is not None
    assert kubectl.get("deployment", "web-web", namespace) is None
    assert kubectl.get("secret", "web-db", namespace) is None


def test_a_decrypted_value_a_template_puts_in_its_error_is_masked(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl, tmp_path
) -> None:
    identity, recipient = generate_identity()
    key_file = tmp_path / "age.key"
    key_file.write_text(identity + "\n")
    chart = write_chart(repo.root / "charts" / "shop", "1.0.0", unique_group())
    (chart / "templates" / "check.yaml").write_text(
        '{{- fail (printf "refusing password %s" .Values.db.password) }}\n'
    )
    encrypted_values(repo, recipient)
    repo.commit("a chart that fails with a secret in its message")
    args = [
        "--source", str(repo.root), "--chart", "charts/shop", "--values", "values/prod.yaml",
        "--age-key-file", str(key_file), "--app", "web", "-n", namespace,
    ]  # fmt: skip
    for command in ("sync", "diff"):
        code, report, shown = run(cli, command, *args)
        assert code == 2
        assert "refusing password *** (decrypted value)" in report["error"]
        assert PASSWORD not in shown
    assert kubectl.get("deployment", "web-web", namespace) is None


def test_an_oci_chart_on_an_unreachable_registry_names_it(cli: Cli, namespace: str) -> None:
    # charts in OCI registries are covered in tests/oci; here only the CLI's error path
    code, out, err = cli(
        "diff", "--chart", "oci://127.0.0.1:9/charts/shop", "--app", "web", "-n", namespace
    )
    assert code == 2
    shown = " ".join((out + err).split())
    assert "registry https://127.0.0.1:9 (oci://127.0.0.1:9/charts/shop)" in shown
    assert "check that the registry is running" in shown
