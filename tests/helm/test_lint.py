"""``tether lint`` of chart Apps: a chart kept in the repository rendered offline with the real
helm, its values checked against ``values.schema.json``, the rendered objects checked like an
overlay's (names, images, schemas, cleartext Secrets); charts lint cannot reach are said to be
skipped. The CLI runs in-process on repositories written on disk; kustomize and helm are real."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.policy.conftest import Repo, Tether, _kustomize_path
from tests.policy.minischema import DEFINITIONS, VERSION


@pytest.fixture(scope="module")
def tether(tmp_path_factory: pytest.TempPathFactory) -> Tether:
    """``tether`` in-process with the lint tests' small schema set and the real kustomize."""
    cache = tmp_path_factory.mktemp("schemas")
    (cache / VERSION).mkdir()
    (cache / VERSION / "definitions.json").write_text(json.dumps(DEFINITIONS))
    kustomize = _kustomize_path()
    assert kustomize.is_file(), f"kustomize not built at {kustomize}: run ./scripts/setup"
    return Tether(cache, kustomize)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], Repo]:
    return lambda name: Repo(tmp_path / name)


CONFIG = """\
apiVersion: tether.dev/v1alpha1
kind: Repository
environments: [dev, prod]
teams:
  - {name: platform, owners: ["@acme/platform"], paths: ["**"]}
apps:
  - {name: shop, team: platform, namespaces: [shop]}
policy:
  images:
    prod: {forbidLatest: true, requireTagOrDigest: true}
"""

CODEOWNERS = "* @acme/platform\n"

CHART_YAML = "apiVersion: v2\nname: shop\nversion: 1.0.0\n"

CHART_VALUES = """\
image: registry.example/shop:1.0.0
replicas: 1
name: shop
db:
  password: ""
"""

SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 1},
        "name": {"type": "string"},
        "db": {"type": "object", "properties": {"password": {"type": "string"}}},
    },
}

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Values.name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
        - name: web
          image: {{ .Values.image }}
"""

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Values.name }}-db
stringData:
  password: {{ .Values.db.password | quote }}
"""

GENERATED = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Values.name }}-session
data:
  key: {{ randAlphaNum 32 | b64enc | quote }}
"""

# The chart's own CRD: Helm installs crds/ before rendering, so templates see its kind (a wrong
# .Capabilities would give a name the API server refuses, a naming finding).
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.lint.example
spec:
  group: lint.example
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""

CAPABILITIES = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ if .Capabilities.APIVersions.Has "lint.example/v1/Widget" }}widgets{{ else }}No_Widgets{{ end }}
data:
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
"""

KUSTOMIZATION = "resources: [app.yaml]\n"


def app(env: str, *, extra: str = "") -> str:
    return f"""\
apiVersion: tether.dev/v1alpha1
kind: App
metadata:
  name: shop
  namespace: shop
spec:
  sourceRef: {{name: platform}}
  path: apps/shop/chart
  chart:
    valuesFiles: [apps/shop/overlays/{env}/values.yaml]
{extra}"""


def chart_repository(repo: Repo) -> Repo:
    repo.write("tether.yaml", CONFIG).write("CODEOWNERS", CODEOWNERS)
    repo.write("apps/shop/chart/Chart.yaml", CHART_YAML)
    repo.write("apps/shop/chart/values.yaml", CHART_VALUES)
    repo.write("apps/shop/chart/values.schema.json", json.dumps(SCHEMA, indent=2))
    repo.write("apps/shop/chart/templates/deployment.yaml", DEPLOYMENT)
    repo.write("apps/shop/chart/templates/secret.yaml", SECRET)
    repo.write("apps/shop/chart/templates/session.yaml", GENERATED)
    repo.write("apps/shop/chart/crds/widgets.yaml", CRD)
    repo.write("apps/shop/chart/templates/capabilities.yaml", CAPABILITIES)
    for env in ("dev", "prod"):
        repo.write(f"apps/shop/overlays/{env}/kustomization.yaml", KUSTOMIZATION)
        repo.write(f"apps/shop/overlays/{env}/app.yaml", app(env))
    repo.write("apps/shop/overlays/dev/values.yaml", "replicas: 1\n")
    repo.write("apps/shop/overlays/prod/values.yaml", "replicas: 3\n")
    return repo


def lint_json(tether: Tether, repo: Repo) -> tuple[int, dict[str, Any]]:
    result = tether("lint", str(repo.root), "-o", "json")
    assert result.code in (0, 1), result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return result.code, report


def rules_of(report: dict[str, Any]) -> list[tuple[str, str, int]]:
    return sorted((f["rule"], f["path"], f["line"]) for f in report["findings"])


def test_a_clean_chart_app_renders_and_lints_clean(
    tether: Tether, make_repo: Callable[[str], Repo]
) -> None:
    repo = chart_repository(make_repo("clean"))
    code, report = lint_json(tether, repo)
    errors = [(f["rule"], f["path"]) for f in report["findings"] if f["severity"] != "note"]
    # the only warning: an app's chart brings a cluster-scoped CRD, as for any app's objects
    assert errors == [("app-cluster-scoped", "apps/shop/chart/crds/widgets.yaml")], errors
    assert code == 1
    # one render per overlay defining the App; the chart's Deployment and Secrets validated
    assert report["checked"]["charts rendered"] == 2
    assert report["checked"]["objects validated"] >= 6
    # the chart's templates are not misplaced manifests
    assert not [f for f in report["findings"] if f["rule"].startswith("layout-")]


def test_values_against_the_schema_name_the_values_file_line_and_key(
    tether: Tether, make_repo: Callable[[str], Repo]
) -> None:
    repo = chart_repository(make_repo("schema"))
    repo.write("apps/shop/overlays/dev/values.yaml", "# dev\nreplicas: many\nname: shop\n")
    repo.write(
        "apps/shop/overlays/prod/app.yaml",
        app("prod", extra="    values:\n      db: {password: [not, a, string]}\n"),
    )
    code, report = lint_json(tether, repo)
    assert code == 1
    invalid = [f for f in report["findings"] if f["rule"] == "chart-values-invalid"]
    by_path = {(f["path"], f["line"]): f["message"] for f in invalid}
    assert set(by_path) == {
        ("apps/shop/overlays/dev/values.yaml", 2),
        ("apps/shop/overlays/prod/app.yaml", 1),
    }, invalid
    dev = by_path[("apps/shop/overlays/dev/values.yaml", 2)]
    assert "value replicas: must be of type integer" in dev and "values.schema.json" in dev
    assert "many" not in dev  # the value itself is never printed
    assert (
        "value db.password: must be of type string"
        in by_path[("apps/shop/overlays/prod/app.yaml", 1)]
    )
    # values that do not fit are not rendered (helm would refuse them)
    assert report["checked"]["charts rendered"] == 0


def test_rendered_objects_get_the_environment_rules_and_cleartext_secrets_are_found(
    tether: Tether, make_repo: Callable[[str], Repo]
) -> None:
    repo = chart_repository(make_repo("rules"))
    repo.write(
        "apps/shop/overlays/prod/values.yaml",
        "replicas: 3\nimage: registry.example/shop:latest\ndb:\n  password: hunter2-Shop-9\n",
    )
    repo.write(
        "apps/shop/overlays/dev/values.yaml",
        "replicas: 1\nname: Shop_Web\n"
        "db:\n  password: ENC[AES256_GCM,data:Tr7o1A==,iv:8Yx3LkZ9dQ2wRt5uVb6nMa==,"
        "tag:p0Qw3eRt5yUi7oPa9sDf1g==,type:str]\n"
        "sops:\n  mac: ENC[AES256_GCM,data:9pZ2kXw4Ls7Yq1Rb3Nf6Tg==,iv:Qk7Lm2Np4Rs6Tu8Vw0Xy1A==,"
        "tag:Zz9Yy8Xx7Ww6Vv5Uu4Tt3Q==,type:str]\n  version: 3.9.0\n",
    )
    code, report = lint_json(tether, repo)
    assert code == 1
    found = rules_of(report)
    # prod: the rule runs on the rendered Deployment, and points at the values line of the image
    assert ("image-latest", "apps/shop/overlays/prod/values.yaml", 2) in found
    # prod: the password is in cleartext in the values file, at its line, value never shown
    cleartext = [f for f in report["findings"] if f["rule"] == "secret-cleartext"]
    assert [(f["path"], f["line"]) for f in cleartext] == [
        ("apps/shop/overlays/prod/values.yaml", 4)
    ], cleartext
    assert "Secret/shop-db" in cleartext[0]["message"]
    assert "hunter2" not in json.dumps(report)
    # dev: a name from the values the API server would refuse, found on the rendered objects;
    # the SOPS-encrypted password and the generated session key are not cleartext
    naming = [f for f in report["findings"] if f["rule"] == "naming-dns1123"]
    assert naming and all(f["path"].startswith("apps/shop/chart/templates/") for f in naming)
    assert not [f for f in cleartext if "overlays/dev" in f["path"]]


def test_charts_lint_cannot_reach_are_reported_as_skipped(
    tether: Tether, make_repo: Callable[[str], Repo]
) -> None:
    repo = chart_repository(make_repo("skipped"))
    repo.write(
        "apps/shop/overlays/prod/app.yaml",
        app("prod").replace(
            "sourceRef: {name: platform}", "sourceRef: {kind: HelmSource, name: x}"
        ),
    )
    repo.write(
        "apps/shop/overlays/dev/app.yaml",
        app("dev").replace("path: apps/shop/chart", "path: charts/elsewhere"),
    )
    code, report = lint_json(tether, repo)
    skipped = {f["path"]: f for f in report["findings"] if f["rule"] == "chart-skipped"}
    assert set(skipped) == {"apps/shop/overlays/dev/app.yaml", "apps/shop/overlays/prod/app.yaml"}
    assert "lint does not use the network" in skipped["apps/shop/overlays/prod/app.yaml"]["message"]
    assert "not in this repository" in skipped["apps/shop/overlays/dev/app.yaml"]["message"]
    assert all(f["severity"] == "note" for f in skipped.values())
    assert code == 0 and report["checked"]["charts rendered"] == 0


def test_a_chart_that_does_not_render_is_a_finding_at_the_app(
    tether: Tether, make_repo: Callable[[str], Repo]
) -> None:
    repo = chart_repository(make_repo("broken"))
    repo.write("apps/shop/chart/templates/broken.yaml", "kind: {{ .Values.nope.deeper }}\n")
    code, report = lint_json(tether, repo)
    failed = [f for f in report["findings"] if f["rule"] == "render-failed"]
    assert code == 1 and {f["path"] for f in failed} == {
        "apps/shop/overlays/dev/app.yaml",
        "apps/shop/overlays/prod/app.yaml",
    }
    assert all("broken.yaml" in f["message"] and f["line"] == 1 for f in failed)
