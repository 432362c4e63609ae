"""The pure checks one by one: tether.yaml, globs, layout, names, images, tenancy, changes."""

from __future__ import annotations

from typing import Any

import pytest

from tether.core import Manifest, SourceLocation
from tether.policy import changes, images, layout, naming, tenancy
from tether.policy.config import ConfigError, ImageRules, RepoConfig, parse
from tether.policy.findings import Review
from tether.policy.globs import codeowners_pattern, matches
from tether.policy.layout import Unit, place_of
from tether.policy.ownership import check_codeowners, codeowners
from tether.policy.patterns import compile_pattern

CONFIG = """
apiVersion: tether.dev/v1alpha1
kind: Repository
environments: [dev, stage, prod]
clusters:
  - {name: dev-1, environment: dev}
teams:
  - {name: platform, owners: ["@acme/platform"], paths: ["**"]}
  - {name: web, owners: ["@acme/web"], paths: ["apps/web/**"], namespaces: ["web-*"]}
apps:
  - {name: web, team: web, namespaces: [web]}
  - api
naming:
  rules:
    - {paths: ["apps/**"], kinds: [Deployment], pattern: "<app>[-<component>]"}
policy:
  images:
    prod: {forbidLatest: true, requireTagOrDigest: true}
    default: {forbidLatest: true}
allowlist:
  - {path: "apps/web/base/fixture.yaml", rule: secret-high-entropy, reason: test data}
"""


@pytest.fixture
def config() -> RepoConfig:
    return parse(CONFIG)


def test_config_is_parsed(config: RepoConfig) -> None:
    assert config.environments == ("dev", "stage", "prod")
    assert config.cluster("dev-1") is not None
    assert config.app_namespaces("web") == ("web", "web-*")
    assert config.app_namespaces("api") == ("api",)
    assert config.image_rules("prod").require_tag_or_digest
    assert config.image_rules("dev") == ImageRules(forbid_latest=True)
    assert config.changes.one_environment_per_change
    assert config.allowlist[0].reason == "test data"


def test_owner_is_the_last_matching_glob(config: RepoConfig) -> None:
    assert config.owner_of("apps/web/base/x.yaml").name == "web"  # type: ignore[union-attr]
    assert config.owner_of("apps/api/base/x.yaml").name == "platform"  # type: ignore[union-attr]
    assert config.owner_of("tether.yaml").name == "platform"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("environments: [dev]\nsurprise: 1\n", "tether.yaml:2: surprise: unknown field"),
        ("environments: [Dev]\n", "tether.yaml:1: environments[0]: 'Dev' is not a DNS-1123 label"),
        ("environments: []\n", "declare at least one environment"),
        (
            "environments: [dev]\nclusters:\n  - name: c\n    environment: prod\n",
            "tether.yaml:4: clusters[0].environment: 'prod' is not one of the environments",
        ),
        (
            "environments: [dev]\napps:\n  - name: web\n    team: ghosts\n",
            "tether.yaml:4: apps[0].team: 'ghosts' is not one of the teams",
        ),
        (
            "environments: [dev]\nnaming:\n  rules:\n    - pattern: '<app>-<kind>'\n",
            "tether.yaml:4: naming.rules[0].pattern: naming pattern '<app>-<kind>': unknown placeholder",
        ),
        (
            "environments: [dev]\nallowlist:\n  - path: x.yaml\n",
            "tether.yaml:3: allowlist[0].reason: is required",
        ),
        (
            "environments: [dev]\nteams:\n  - name: a\n    owners: [someone]\n",
            "tether.yaml:4: teams[0].owners[0]: 'someone' is not a CODEOWNERS owner",
        ),
        ("environments: [dev, dev]\n", "tether.yaml:1: environments[1]: 'dev' is declared twice"),
        ("environments: [dev\n", "tether.yaml:2: not valid YAML"),
    ],
)
def test_config_errors_name_the_line_and_field(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert where in str(caught.value)


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        ("apps/web/**", "apps/web/base/x.yaml", True),
        ("apps/web/**", "apps/webshop/base/x.yaml", False),
        ("apps/*/overlays/prod/**", "apps/api/overlays/prod/k.yaml", True),
        ("apps/*/overlays/prod/**", "apps/api/overlays/dev/k.yaml", False),
        ("**", "anything/at/all", True),
        ("**/kustomization.yaml", "kustomization.yaml", True),
        ("**/kustomization.yaml", "a/b/kustomization.yaml", True),
        ("tether.yaml", "tether.yaml", True),
        ("tether.yaml", "apps/tether.yaml", False),
        ("platform/", "platform/base/x.yaml", True),
    ],
)
def test_globs(glob: str, path: str, expected: bool) -> None:
    assert matches(glob, path) is expected


def test_codeowners_spelling_and_round_trip(config: RepoConfig) -> None:
    assert codeowners_pattern("**") == "*"
    assert codeowners_pattern("apps/web/**") == "/apps/web/"
    assert codeowners_pattern("tether.yaml") == "/tether.yaml"
    text = codeowners(config)
    assert "* @acme/platform\n" in text and "/apps/web/ @acme/web\n" in text
    assert check_codeowners("CODEOWNERS", text, config) == []
    edited = text.replace("/apps/web/ @acme/web", "/apps/web/ @someone-else")
    [finding] = check_codeowners("CODEOWNERS", edited, config)
    assert finding.rule == "codeowners-mismatch"
    assert finding.line == edited.splitlines().index("/apps/web/ @someone-else") + 1
    [missing] = check_codeowners(None, None, config)
    assert missing.path == "tether.yaml"


def test_places() -> None:
    assert place_of("apps/web/overlays/prod/kustomization.yaml").environment == "prod"
    assert place_of("apps/web/overlays/prod/kustomization.yaml").unit == "apps/web/overlays/prod"
    assert place_of("apps/web/base/deployment.yaml").unit == "apps/web/base"
    assert place_of("platform/overlays/dev/x.yaml").app == ""
    assert place_of("clusters/dev-1/kustomization.yaml").cluster == "dev-1"
    assert place_of("apps/web/deployment.yaml").unit == ""
    assert place_of("docs/x.md").layer == ""


def test_units() -> None:
    files = [
        "platform/base/kustomization.yaml",
        "platform/overlays/dev/kustomization.yaml",
        "apps/web/base/kustomization.yaml",
        "apps/web/overlays/dev/kustomization.yaml",
        "apps/web/overlays/prod/kustomization.yaml",
        "apps/solo/base/kustomization.yaml",
        "clusters/dev-1/kustomization.yaml",
        "clusters/README.md",
    ]
    assert layout.units(files) == [
        "platform/overlays/dev",
        "apps/solo/base",
        "apps/web/overlays/dev",
        "apps/web/overlays/prod",
        "clusters/dev-1",
    ]


def test_layout_findings(config: RepoConfig) -> None:
    files = [
        "README.md",
        "LICENSE",
        ".github/workflows/ci.yaml",
        "docs/stuff.yaml",
        "scripts/deploy.sh",
        "scripts/other.sh",
        "stray.yaml",
        "platform/base/kustomization.yaml",
        "platform/base/ns.yaml",
        "platform/loose.yaml",
        "apps/web/base/deployment.yaml",
        "apps/web/overlays/qa/kustomization.yaml",
        "apps/web/README.md",
        "apps/ghost/base/kustomization.yaml",
        "clusters/dev-1/kustomization.yaml",
        "clusters/unknown/kustomization.yaml",
        "clusters/loose.yaml",
    ]
    manifests = {"stray.yaml", "docs/stuff.yaml", "platform/base/ns.yaml", "platform/loose.yaml"}
    found = {(f.rule, f.path) for f in layout.check(files, manifests, config)}
    assert found == {
        ("layout-unknown-top-level", "scripts/"),
        ("layout-manifest-outside", "stray.yaml"),
        ("layout-manifest-outside", "docs/stuff.yaml"),
        ("layout-misplaced", "platform/loose.yaml"),
        ("layout-misplaced", "clusters/loose.yaml"),
        ("layout-undeclared", "apps/ghost/"),
        ("layout-undeclared", "apps/web/overlays/qa/"),
        ("layout-undeclared", "clusters/unknown/"),
        ("layout-missing-kustomization", "apps/web/base/"),
    }


def manifest(body: dict[str, Any], path: str = "apps/web/base/x.yaml", line: int = 1) -> Manifest:
    return Manifest(body, SourceLocation(path, line))


def obj(
    kind: str, name: str, namespace: str = "", api: str = "v1", **extra: object
) -> dict[str, Any]:
    metadata: dict[str, object] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": metadata, **extra}


@pytest.mark.parametrize(
    ("kind", "name", "ok"),
    [
        ("ConfigMap", "web.settings-1", True),
        ("ConfigMap", "Web_Settings", False),
        ("ConfigMap", "x" * 254, False),
        ("Namespace", "web.prod", False),
        ("Namespace", "web-prod", True),
        ("Service", "1web", False),
        ("Service", "web", True),
        ("ClusterRole", "system:controller:web", True),
        ("ClusterRole", "a/b", False),
        ("Deployment", "-web", False),
    ],
)
def test_dns_names(kind: str, name: str, ok: bool) -> None:
    assert (naming.name_problem(kind, name) == "") is ok


def test_naming_findings(config: RepoConfig) -> None:
    unit = Unit(
        "apps/web/overlays/dev",
        place_of("apps/web/overlays/dev/k.yaml"),
        (
            manifest(obj("Deployment", "web", "web", "apps/v1")),
            manifest(obj("Deployment", "web-worker", "web", "apps/v1")),
            manifest(obj("Deployment", "frontend", "web", "apps/v1")),
            manifest(obj("ConfigMap", "anything-goes", "web")),
            manifest(
                {
                    **obj("ConfigMap", "labelled", "web"),
                    "metadata": {"name": "labelled", "labels": {"bad key!": "x", "ok": "-no-"}},
                }
            ),
        ),
    )
    found = [(f.rule, f.subject, f.field) for f in naming.check(unit, config)]
    assert ("naming-pattern", "Deployment.apps/web/frontend", "metadata.name") in found
    assert len([f for f in found if f[0] == "naming-pattern"]) == 1
    labels = [f for f in found if f[0] == "naming-dns1123"]
    assert {f[2] for f in labels} == {'metadata.labels["bad key!"]', "metadata.labels.ok"}


def test_name_patterns() -> None:
    pattern = compile_pattern("<app>[-<component>]", {"app": "web"})
    assert pattern.fullmatch("web") and pattern.fullmatch("web-worker")
    assert not pattern.fullmatch("webworker") and not pattern.fullmatch("api-web")
    assert compile_pattern("<env>-<app>", {"app": "a", "env": "prod"}).fullmatch("prod-a")


@pytest.mark.parametrize(
    ("image", "rules", "expected"),
    [
        ("web:1.2.3", ImageRules(True, True), None),
        ("web", ImageRules(True, True), "image-unpinned"),
        ("web:latest", ImageRules(True, True), "image-latest"),
        ("web:latest", ImageRules(False, True), None),
        ("web@sha256:" + "a" * 64, ImageRules(True, True, True), None),
        ("web:latest@sha256:" + "a" * 64, ImageRules(True, True), None),
        ("web:1.2.3", ImageRules(require_digest=True), "image-unpinned"),
        ("registry:5000/team/web", ImageRules(forbid_latest=True), "image-unpinned"),
        ("registry:5000/team/web:2", ImageRules(forbid_latest=True), None),
    ],
)
def test_image_rules(image: str, rules: ImageRules, expected: str | None) -> None:
    body = obj(
        "CronJob",
        "job",
        "web",
        "batch/v1",
        spec={
            "jobTemplate": {
                "spec": {"template": {"spec": {"initContainers": [{"name": "c", "image": image}]}}}
            }
        },
    )
    found = images.check((manifest(body),), "prod", rules)
    assert [f.rule for f in found] == ([expected] if expected else [])
    if found:
        assert found[0].field == "spec.jobTemplate.spec.template.spec.initContainers[0].image"


def test_tenancy(config: RepoConfig) -> None:
    web = Unit(
        "apps/web/overlays/dev",
        place_of("apps/web/overlays/dev/x"),
        (
            manifest(obj("ConfigMap", "shared", "web-data")),
            manifest(obj("ConfigMap", "stray", "kube-system")),
            manifest(obj("ClusterRole", "web-reader", api="rbac.authorization.k8s.io/v1")),
            manifest(obj("Namespace", "web")),
            manifest(obj("Widget", "w", api="example.com/v1")),
            manifest(obj("ConfigMap", "no-namespace")),
        ),
    )
    platform = Unit(
        "platform/base",
        place_of("platform/base/x"),
        (manifest(obj("Namespace", "web"), "platform/base/ns.yaml", 3),),
    )
    api = Unit(
        "apps/api/overlays/prod",
        place_of("apps/api/overlays/prod/x"),
        (manifest(obj("ConfigMap", "no-namespace"), "apps/api/base/cm.yaml"),),
    )
    custom = tenancy.cluster_scoped(
        [
            manifest(
                {
                    **obj(
                        "CustomResourceDefinition",
                        "widgets.example.com",
                        api="apiextensions.k8s.io/v1",
                    ),
                    "spec": {
                        "group": "example.com",
                        "scope": "Cluster",
                        "names": {"kind": "Widget"},
                    },
                }
            )
        ]
    )
    found = sorted((f.rule, f.subject) for f in tenancy.check_namespaces(web, config, custom))
    assert found == [
        ("app-cluster-scoped", "ClusterRole.rbac.authorization.k8s.io/web-reader"),
        ("app-cluster-scoped", "Widget.example.com/w"),
        ("namespace-outside-app", "ConfigMap/kube-system/stray"),
    ]
    duplicates = tenancy.check_duplicates([web, platform, api], config.environments, custom)
    assert sorted((f.path, f.line) for f in duplicates) == [
        ("apps/web/base/x.yaml", 1),
        ("platform/base/ns.yaml", 3),
    ]
    assert "(environments: dev)" in duplicates[0].message


def test_change_judgement(config: RepoConfig) -> None:
    def judge(*paths: str) -> tuple[set[str], Review]:
        found, review = changes.judge(
            [changes.ChangedFile("M", p) for p in paths], config, "HEAD~1"
        )
        return {f.rule for f in found}, review

    rules, review = judge("apps/web/overlays/dev/kustomization.yaml")
    assert rules == set() and review.owners == ("@acme/web",) and review.environments == ("dev",)
    rules, review = judge("platform/base/ns.yaml", "apps/web/base/deployment.yaml")
    assert rules == {"change-mixes-layers", "change-multiple-teams"}
    assert review.owners == ("@acme/platform", "@acme/web")
    assert review.reaches_every_environment
    rules, _ = judge("apps/web/overlays/dev/k.yaml", "apps/web/overlays/prod/k.yaml")
    assert rules == {"change-multiple-environments"}
    rules, review = judge("clusters/dev-1/kustomization.yaml", "platform/overlays/dev/k.yaml")
    assert rules == set() and review.environments == ("dev",)
