"""The chart the Helm tests deploy, written for the tests: a CRD, a Deployment, a Secret whose
value comes from the values (a SOPS-encrypted values file in the tests), a ConfigMap telling what
``.Capabilities`` said, a pre-install/pre-upgrade Job hook and a post-install ConfigMap hook.

``write_chart`` writes one version of it; ``extra=True`` adds a ConfigMap that a later version
drops (so a sync with --prune must delete it). The CRD's group is given per test: CRDs are
cluster-wide, and each test's app must own its own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

CHART_YAML = """\
apiVersion: v2
name: {name}
description: A chart written for Tether's tests
type: application
version: {version}
appVersion: "{version}"
"""

VALUES_YAML = """\
image: registry.example/shop:{version}
replicas: 1
db:
  password: ""
probe: {group}/v1/Widget
"""

CRD_YAML = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    kind: Widget
    plural: widgets
    singular: widget
    listKind: WidgetList
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""

HELPERS = """\
{{- define "shop.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels:
    {{- include "shop.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
    spec:
      containers:
        - name: web
          image: {{ .Values.image }}
          envFrom:
            - secretRef:
                name: {{ .Release.Name }}-db
"""

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-db
  labels:
    {{- include "shop.labels" . | nindent 4 }}
type: Opaque
data:
  password: {{ required "db.password is required: set it in a values file" .Values.db.password | b64enc }}
"""

CAPABILITIES = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-capabilities
data:
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
  probe: {{ .Values.probe | quote }}
  probeServed: {{ .Capabilities.APIVersions.Has .Values.probe | quote }}
  releaseNamespace: {{ .Release.Namespace | quote }}
"""

PRE_HOOK = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: registry.example/migrate:{{ .Chart.Version }}
"""

POST_HOOK = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-installed
  annotations:
    helm.sh/hook: post-install,post-upgrade
data:
  chart: {{ .Chart.Version | quote }}
"""

TEST_HOOK = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
    - name: test
      image: registry.example/test:1
"""

EXTRA = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-extra
data:
  note: only in the first version
"""


def write_chart(
    directory: Path,
    version: str,
    group: str,
    *,
    name: str = "shop",
    extra: bool = False,
) -> Path:
    """Write the test chart at ``version`` into ``directory`` (its chart root)."""
    files = {
        "Chart.yaml": CHART_YAML.format(name=name, version=version),
        "values.yaml": VALUES_YAML.format(version=version, group=group),
        "crds/widgets.yaml": CRD_YAML.format(group=group),
        "templates/_helpers.tpl": HELPERS,
        "templates/deployment.yaml": DEPLOYMENT,
        "templates/secret.yaml": SECRET,
        "templates/capabilities.yaml": CAPABILITIES,
        "templates/hook-migrate.yaml": PRE_HOOK,
        "templates/hook-installed.yaml": POST_HOOK,
        "templates/tests/test-pod.yaml": TEST_HOOK,
    }
    if extra:
        files["templates/extra.yaml"] = EXTRA
    for relative, text in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return directory


def helm_package(helm: Path, chart: Path, destination: Path) -> Path:
    """``helm package`` of ``chart`` into ``destination`` (the real helm, as publishers do)."""
    destination.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(helm), "package", str(chart), "--destination", str(destination)],
        capture_output=True,
        text=True,
        check=True,
        env=hermetic_env(destination.parent),
    )
    return Path(result.stdout.strip().rpartition(": ")[2])


def helm_repo_index(helm: Path, directory: Path, url: str) -> None:
    """``helm repo index`` of the packages in ``directory``, served at ``url``."""
    subprocess.run(
        [str(helm), "repo", "index", str(directory), "--url", url],
        capture_output=True,
        text=True,
        check=True,
        env=hermetic_env(directory.parent),
    )


def hermetic_env(scratch: Path) -> dict[str, str]:
    home = scratch / "helm-home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "PATH": "/usr/bin:/bin",
    }
