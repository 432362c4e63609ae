"""Chart values from ConfigMaps and Secrets (``valuesFrom``) and ``--set``, on the real control
plane with the real helm.

The values are merged in this order, later winning: the chart's defaults, the values files
(Git), each ``valuesFrom`` reference in order, the inline ``values``, then ``--set``. References
are read as the App's identity (the impersonated ServiceAccount); a missing one that is not
optional fails the sync naming it, with nothing applied; Secret values never show.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path

from tests.agent.conftest import (
    app_condition,
    app_ready,
    apply_yaml,
    source_and_app,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.conftest import Cli, GitRepo, Kubectl, configmaps_only_service_account
from tether.cluster.kubeconfig import load
from tether.core.inventory import app_identity
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import ensure_binary
from tether.reconcile.charts import ChartSpec, ValuesReference
from tether.reconcile.decrypt import KeySources
from tether.reconcile.options import SyncOptions
from tether.reconcile.run import SourceSpec, SyncReport, run_sync
from tether.render import SetValue
from tether.secrets import encrypt_document, generate_identity

__all__ = ["start_agent", "tether_crds"]  # fixtures used here

SECRET_VALUE = f"s3cr3t-{uuid.uuid4().hex[:12]}"

CHART_YAML = "apiVersion: v2\nname: layered\nversion: 0.1.0\n"
CHART_VALUES = """\
greeting: chart
color: chart
size: chart
level: chart
db: {password: ""}
"""
CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-layers
data:
  greeting: {{ .Values.greeting | quote }}
  color: {{ .Values.color | quote }}
  size: {{ .Values.size | quote }}
  level: {{ .Values.level | quote }}
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-db
stringData:
  password: {{ .Values.db.password | quote }}
"""
FILE_VALUES = "greeting: file\ncolor: file\nsize: file\nlevel: file\n"


def write_layered_chart(repo: GitRepo) -> None:
    repo.write("charts/layered/Chart.yaml", CHART_YAML)
    repo.write("charts/layered/values.yaml", CHART_VALUES)
    repo.write("charts/layered/templates/config.yaml", CONFIG)
    repo.write("charts/layered/templates/secret.yaml", SECRET)
    repo.write("values/base.yaml", FILE_VALUES)
    repo.commit("a chart that shows where each value came from")


def deployer(kubectl: Kubectl, namespace: str) -> str:
    """A ServiceAccount with every right in ``namespace`` (what an App is applied as)."""
    kubectl("create", "serviceaccount", "deployer", "-n", namespace)
    kubectl(
        "create", "rolebinding", "deployer", "-n", namespace, "--clusterrole=admin",
        f"--serviceaccount={namespace}:deployer",
    )  # fmt: skip
    return f"{namespace}/deployer"


def sync(
    dev_cluster: DevCluster,
    repo: GitRepo,
    namespace: str,
    chart: ChartSpec,
    impersonate: str,
    keys: KeySources | None = None,
) -> SyncReport:
    spec = SourceSpec(str(repo.root), chart=chart)
    options = SyncOptions(
        app_identity("layered", namespace),
        namespace=namespace,
        timeout=0,
        impersonate=impersonate,
        keys=keys or KeySources(environment=False),
    )
    return asyncio.run(
        run_sync(
            spec, options, load(dev_cluster.kubeconfig_path), audit=None, actor="test",
            helm=ensure_binary("helm"),
        )
    )  # fmt: skip


def layers(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    found = kubectl.get("configmap", "layered-layers", namespace)
    assert found is not None
    return dict(found["data"])


def password(kubectl: Kubectl, namespace: str) -> str:
    found = kubectl.get("secret", "layered-db", namespace)
    assert found is not None
    return base64.b64decode(found["data"]["password"]).decode()


def test_values_merge_files_then_references_then_inline_then_set(
    dev_cluster: DevCluster, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    write_layered_chart(repo)
    kubectl(
        "create", "configmap", "shop-values", "-n", namespace,
        "--from-literal=values.yaml=color: configmap\nsize: configmap\nlevel: configmap\n",
    )  # fmt: skip
    kubectl(
        "create", "secret", "generic", "shop-db", "-n", namespace,
        f"--from-literal=password={SECRET_VALUE}",
    )  # fmt: skip
    chart = ChartSpec(
        "charts/layered",
        values_files=("values/base.yaml",),
        values={"size": "inline", "level": "inline"},
        values_from=(
            ValuesReference("ConfigMap", "shop-values", namespace),
            ValuesReference("Secret", "shop-db", namespace, "password", "db.password"),
            ValuesReference("ConfigMap", "not-there", namespace, optional=True),
            ValuesReference("Secret", "shop-db", namespace, "no-such-key", optional=True),
        ),
        set_values=(SetValue("--set", "level=set"),),
    )
    report = sync(dev_cluster, repo, namespace, chart, deployer(kubectl, namespace))
    assert report.succeeded, report.error
    assert layers(kubectl, namespace) == {
        "greeting": "file",  # only the values file sets it
        "color": "configmap",  # the reference comes after the files
        "size": "inline",  # inline values after the references
        "level": "set",  # --set on top of everything
    }
    assert password(kubectl, namespace) == SECRET_VALUE  # at its targetPath, as a string
    assert SECRET_VALUE not in json.dumps(report.changes.to_list()) + report.error


def test_a_missing_reference_fails_the_sync_naming_it_and_applies_nothing(
    dev_cluster: DevCluster, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    write_layered_chart(repo)
    missing = ChartSpec(
        "charts/layered", values_from=(ValuesReference("Secret", "db-values", namespace),)
    )
    report = sync(dev_cluster, repo, namespace, missing, deployer(kubectl, namespace))
    assert not report.succeeded
    assert f"Secret {namespace}/db-values not found" in report.error
    assert "optional" in report.error and "nothing was applied" in report.error
    assert kubectl.get("configmap", "layered-layers", namespace) is None

    kubectl("create", "configmap", "other", "-n", namespace, "--from-literal=else=1")
    no_key = ChartSpec(
        "charts/layered", values_from=(ValuesReference("ConfigMap", "other", namespace),)
    )
    report = sync(dev_cluster, repo, namespace, no_key, f"{namespace}/deployer")
    assert "has no key 'values.yaml' (its keys: else)" in report.error
    assert kubectl.get("configmap", "layered-layers", namespace) is None


def test_references_are_read_as_the_apps_identity(
    dev_cluster: DevCluster, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    write_layered_chart(repo)
    kubectl(
        "create", "secret", "generic", "db-values", "-n", namespace,
        f"--from-literal=values.yaml=db: {{password: {SECRET_VALUE}}}",
    )  # fmt: skip
    account = configmaps_only_service_account(kubectl, namespace)
    chart = ChartSpec(
        "charts/layered", values_from=(ValuesReference("Secret", "db-values", namespace),)
    )
    report = sync(dev_cluster, repo, namespace, chart, account)
    assert not report.succeeded
    assert f"valuesFrom Secret {namespace}/db-values" in report.error
    assert f"may not be read as {account}" in report.error
    assert SECRET_VALUE not in report.error
    assert kubectl.get("configmap", "layered-layers", namespace) is None


def test_a_sops_encrypted_reference_is_decrypted_in_memory_and_never_shown(
    dev_cluster: DevCluster, repo: GitRepo, namespace: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    write_layered_chart(repo)
    identity, recipient = generate_identity()
    key_file = tmp_path / "age.key"
    key_file.write_text(identity + "\n")
    encrypted = encrypt_document(
        f"db:\n  password: {SECRET_VALUE}\ncolor: sealed\n", "yaml", [recipient], source="v.yaml"
    )
    kubectl(
        "create", "secret", "generic", "sealed-values", "-n", namespace,
        f"--from-literal=values.yaml={encrypted}",
    )  # fmt: skip
    chart = ChartSpec(
        "charts/layered", values_from=(ValuesReference("Secret", "sealed-values", namespace),)
    )
    keys = KeySources(files=(str(key_file),), environment=False)
    report = sync(dev_cluster, repo, namespace, chart, deployer(kubectl, namespace), keys)
    assert report.succeeded, report.error
    assert password(kubectl, namespace) == SECRET_VALUE
    assert layers(kubectl, namespace)["color"] == "sealed"
    assert SECRET_VALUE not in json.dumps(report.changes.to_list())


def test_set_on_the_command_line_and_its_values_never_printed(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    write_layered_chart(repo)
    common = ["--source", str(repo.root), "--chart", "charts/layered", "--app", "layered"]
    code, out, err = cli(
        "sync", *common, "-n", namespace, "--values", "values/base.yaml",
        "--set", "color=red,size=9", "--set-string", "level=007", "--timeout", "0",
    )  # fmt: skip
    assert code == 0, out + err
    assert layers(kubectl, namespace) == {
        "greeting": "file", "color": "red", "size": "9", "level": "007",
    }  # fmt: skip
    code, out, err = cli("diff", *common, "-n", namespace, "--set", f"db.password[={SECRET_VALUE}")
    assert code == 2, out + err
    assert "failed parsing --set data" in out + err and SECRET_VALUE not in out + err
    code, out, err = cli("diff", *common, "-n", namespace, "--set", "no-equals-sign")
    assert code == 2 and "KEY=VALUE" in out + err


def test_the_agent_reads_values_from_and_reports_a_missing_reference(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    write_layered_chart(repo)
    extra = (
        "  chart:\n"
        "    valuesFiles: [values/base.yaml]\n"
        "    valuesFrom:\n"
        "      - {kind: ConfigMap, name: web-values}\n"
        "      - {kind: Secret, name: web-db, valuesKey: password, targetPath: db.password}\n"
        "    releaseName: layered\n"
    )
    kubectl(
        "create", "configmap", "web-values", "-n", namespace,
        "--from-literal=values.yaml=color: configmap\n",
    )  # fmt: skip
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "charts/layered", extra=extra))
    agent = start_agent()

    def refused() -> str:
        ready = app_condition(kubectl, namespace, "web", "Ready") or {}
        return str(ready.get("message", "")) if ready.get("status") == "False" else ""

    message = wait_for(refused, 90, "the App to report the missing Secret")
    assert f"Secret {namespace}/web-db not found" in message, message
    assert kubectl.get("configmap", "layered-layers", namespace) is None

    kubectl(
        "create", "secret", "generic", "web-db", "-n", namespace,
        f"--from-literal=password={SECRET_VALUE}",
    )  # fmt: skip
    kubectl(
        "annotate", "apps.tether.dev", "web", "-n", namespace,
        "tether.dev/reconcile-requested-at=now", "--overwrite",
    )  # fmt: skip
    wait_for(lambda: app_ready(kubectl, namespace), 90, "the App to sync once the Secret exists")
    assert layers(kubectl, namespace)["color"] == "configmap"
    assert password(kubectl, namespace) == SECRET_VALUE
    assert SECRET_VALUE not in agent.log.read_text(errors="replace")
