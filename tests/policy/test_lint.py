"""``tether init`` and ``tether lint`` end to end: real files, real kustomize, the CLI in-process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.policy.conftest import Repo, Tether
from tether.policy.config import parse
from tether.render import RenderSettings, render


def findings(result_stdout: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(result_stdout)["findings"]
    return found


def rules_at(result_stdout: str) -> set[tuple[str, str, int]]:
    return {(f["rule"], f["path"], f["line"]) for f in findings(result_stdout)}


# -- init -----------------------------------------------------------------------------------------


def test_init_lays_out_a_repository_that_renders_and_lints_clean(
    scaffolded: Repo, tether: Tether, kustomize: Path
) -> None:
    root = scaffolded.root
    for path in (
        "tether.yaml",
        "CODEOWNERS",
        "platform/base/kustomization.yaml",
        "platform/overlays/prod/kustomization.yaml",
        "apps/web/base/deployment.yaml",
        "apps/api/overlays/stage/kustomization.yaml",
        "clusters/dev-1/kustomization.yaml",
        "clusters/prod-eu/kustomization.yaml",
    ):
        assert (root / path).is_file(), path
    config = parse(scaffolded.read("tether.yaml"))
    assert config.environments == ("dev", "stage", "prod")
    assert [(c.name, c.environment) for c in config.clusters] == [
        ("dev-1", "dev"),
        ("prod-eu", "prod"),
    ]
    assert [t.handles for t in config.teams] == [
        ("@acme/platform",),
        ("@acme/web",),
        ("@acme/api",),
    ]
    settings = RenderSettings(kustomize=kustomize)
    prod = render(root, "clusters/prod-eu", settings)
    kinds = sorted((m.kind, m.ref.namespace, m.ref.name) for m in prod)
    assert ("Deployment", "web", "web") in kinds and ("Namespace", "", "api") in kinds
    web_prod = next(m for m in prod if m.kind == "Deployment" and m.ref.name == "web")
    assert web_prod.body["spec"]["replicas"] == 2
    assert web_prod.body["metadata"]["labels"]["tether.dev/environment"] == "prod"

    result = tether("lint", str(root), "-o", "json")
    assert result.code == 0, result.stdout
    assert findings(result.stdout) == []
    checked = json.loads(result.stdout)["checked"]
    assert checked["directories rendered"] == 11 and checked["objects validated"] > 0


def test_init_refuses_to_overwrite_unless_forced(scaffolded: Repo, tether: Tether) -> None:
    scaffolded.write("apps/web/base/deployment.yaml", "# mine\n")
    result = tether("init", str(scaffolded.root), "--apps", "web,api")
    assert result.code == 2
    assert "already exist" in result.stderr and "nothing was written" in result.stderr
    assert scaffolded.read("apps/web/base/deployment.yaml") == "# mine\n"
    result = tether("init", str(scaffolded.root), "--apps", "web,api", "--force")
    assert result.code == 0
    assert "kind: Deployment" in scaffolded.read("apps/web/base/deployment.yaml")


def test_init_refuses_bad_names(tether: Tether, make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("bad")
    result = tether("init", str(repo.root), "--apps", "Web_App")
    assert result.code == 2 and "not a DNS-1123 label" in result.stderr
    result = tether("init", str(repo.root), "--apps", "web", "--clusters", "c1=qa")
    assert result.code == 2 and "'qa'" in result.stderr
    assert not any(repo.root.iterdir())


def test_teams_and_codeowners(tether: Tether, make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("teams")
    result = tether(
        "init",
        str(repo.root),
        "--apps",
        "web,api,batch",
        "--team",
        "platform=**",
        "--team",
        "frontend=apps/web/**,apps/api/**",
        "--team",
        "data=apps/batch/**",
        "--org",
        "acme",
    )
    assert result.code == 0, result.stderr
    config = parse(repo.read("tether.yaml"))
    assert [(a.name, a.team) for a in config.apps] == [
        ("web", "frontend"),
        ("api", "frontend"),
        ("batch", "data"),
    ]
    assert config.team("frontend").namespaces == ("web", "api")  # type: ignore[union-attr]
    assert "/apps/api/ @acme/frontend" in repo.read("CODEOWNERS")

    # tether.yaml changes, CODEOWNERS lags behind: lint says so, --codeowners-only fixes it.
    repo.write("tether.yaml", repo.read("tether.yaml").replace("@acme/data", "@acme/analytics"))
    result = tether("lint", str(repo.root), "-o", "json")
    assert result.code == 1
    assert {f["rule"] for f in findings(result.stdout)} == {"codeowners-mismatch"}
    result = tether("init", str(repo.root), "--codeowners-only")
    assert result.code == 0
    assert "/apps/batch/ @acme/analytics" in repo.read("CODEOWNERS")
    assert tether("lint", str(repo.root)).code == 0


# -- lint: findings ---------------------------------------------------------------------------------


def test_a_bad_repository(scaffolded: Repo, tether: Tether) -> None:
    repo = scaffolded
    repo.write("deploy.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n")
    repo.write("scripts/run.sh", "#!/bin/sh\n")
    repo.write(
        "apps/web/deployment.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
    )
    repo.write(
        "apps/web/base/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Web_Settings\n  namespace: api\n"
        "data:\n  LOG_LEVEL: debug\n---\n"
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-db\nstringData:\n  password: hunter22\n",
    )
    repo.write(
        "apps/web/base/kustomization.yaml",
        repo.read("apps/web/base/kustomization.yaml") + "  - extra.yaml\n",
    )
    repo.write(
        "apps/api/base/deployment.yaml",
        repo.read("apps/api/base/deployment.yaml").replace("replicas: 1", "replicas: one"),
    )
    overlay = "apps/web/overlays/prod/kustomization.yaml"
    repo.write(overlay, repo.read(overlay).replace('newTag: "0.1.0"', "newTag: latest"))
    stage = "apps/api/overlays/stage/kustomization.yaml"
    repo.write(stage, repo.read(stage) + "namespace: kube-system\n")
    result = tether("lint", str(repo.root), "-o", "json")
    assert result.code == 1
    found = rules_at(result.stdout)
    new_tag_line = repo.read(overlay).splitlines().index("    newTag: latest") + 1
    assert found == {
        ("layout-manifest-outside", "deploy.yaml", 0),
        ("layout-unknown-top-level", "scripts/", 0),
        ("layout-misplaced", "apps/web/deployment.yaml", 0),
        ("naming-dns1123", "apps/web/base/extra.yaml", 4),
        ("secret-cleartext", "apps/web/base/extra.yaml", 14),
        ("schema-invalid", "apps/api/base/deployment.yaml", 8),
        ("image-latest", overlay, new_tag_line),
        # the stage overlay moves api's objects into kube-system (the base has no namespace
        # line, so the finding points at the objects' metadata)
        ("namespace-outside-app", "apps/api/base/deployment.yaml", 3),
        ("namespace-outside-app", "apps/api/base/service.yaml", 3),
    }
    by_rule = {f["rule"]: f for f in findings(result.stdout)}
    assert "hunter22" not in result.stdout
    assert by_rule["schema-invalid"]["field"] == "spec.replicas"
    assert "'one' is not of type 'integer'" in by_rule["schema-invalid"]["message"]
    assert "prod forbids it" in by_rule["image-latest"]["message"]

    text = tether("lint", str(repo.root))
    assert text.code == 1
    assert f"{overlay}:{new_tag_line}: error [image-latest]" in text.stdout
    assert "    fix: pin a version tag or a digest" in text.stdout


def test_duplicates_across_apps_and_render_failures(scaffolded: Repo, tether: Tether) -> None:
    repo = scaffolded
    role = (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\n"
        "rules: []\n"
    )
    repo.write("apps/web/base/role.yaml", role)
    repo.write("apps/api/base/role.yaml", role)
    repo.write("apps/web/base/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n")
    repo.write(
        "apps/web/base/kustomization.yaml",
        repo.read("apps/web/base/kustomization.yaml") + "  - role.yaml\n  - ns.yaml\n",
    )
    repo.write(
        "apps/api/base/kustomization.yaml",
        repo.read("apps/api/base/kustomization.yaml") + "  - role.yaml\n",
    )
    stage = "apps/api/overlays/stage/kustomization.yaml"
    repo.write(
        stage, repo.read(stage).replace("  - ../../base\n", "  - ../../base\n  - missing.yaml\n")
    )
    result = tether("lint", str(repo.root), "-o", "json")
    assert result.code == 1
    found = findings(result.stdout)
    duplicates = {(f["path"], f["line"]) for f in found if f["rule"] == "duplicate-object"}
    assert duplicates == {
        ("apps/web/base/role.yaml", 1),
        ("apps/api/base/role.yaml", 1),
        ("apps/web/base/ns.yaml", 1),
        ("platform/base/namespaces.yaml", 2),
    }
    namespace = next(f for f in found if f["path"] == "apps/web/base/ns.yaml")
    assert "also by the platform (platform/base/namespaces.yaml:2)" in namespace["message"]
    scoped = {(f["path"], f["severity"]) for f in found if f["rule"] == "app-cluster-scoped"}
    assert scoped == {
        ("apps/web/base/role.yaml", "warning"),
        ("apps/api/base/role.yaml", "warning"),
    }
    failed = {f["path"]: f["message"] for f in found if f["rule"] == "render-failed"}
    assert "missing.yaml" in failed["apps/api/overlays/stage/kustomization.yaml"]
    # the clusters' renders now hold the role and the namespace twice
    assert {"clusters/dev-1/kustomization.yaml", "clusters/prod-eu/kustomization.yaml"} <= set(
        failed
    )


def test_custom_resources_are_validated_by_the_repository_crds(
    scaffolded: Repo, tether: Tether
) -> None:
    repo = scaffolded
    repo.write(
        "platform/base/crd.yaml",
        """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1}
                port: {x-kubernetes-int-or-string: true}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
""",
    )
    repo.write(
        "platform/base/kustomization.yaml",
        repo.read("platform/base/kustomization.yaml") + "  - crd.yaml\n",
    )
    repo.write(
        "apps/web/base/widgets.yaml",
        """apiVersion: example.com/v1
kind: Widget
metadata:
  name: good
spec:
  size: 3
  port: http
  extra: {anything: [1, 2]}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: bad
spec:
  size: 0
  colour: blue
---
apiVersion: example.com/v2
kind: Widget
metadata:
  name: unknown-version
spec: {}
""",
    )
    repo.write(
        "apps/web/base/kustomization.yaml",
        repo.read("apps/web/base/kustomization.yaml") + "  - widgets.yaml\n",
    )
    result = tether("lint", str(repo.root), "-o", "json")
    found = [(f["rule"], f["line"], f.get("field", "")) for f in findings(result.stdout)]
    assert sorted(found) == [
        ("schema-invalid", 15, "spec.size"),
        ("schema-invalid", 16, "spec.colour"),
        ("schema-unknown-kind", 18, ""),
    ], found
    assert result.code == 1
    messages = " ".join(f["message"] for f in findings(result.stdout))
    assert "unknown field 'colour'" in messages
    assert "0 is less than the minimum of 1" in messages


def test_allowlist_in_tether_yaml(scaffolded: Repo, tether: Tether) -> None:
    repo = scaffolded
    repo.write("docs/example.md", "Example token: q7Vt2LmX9pRk4Zs8BnW3yHc6JdF1gTa5Ue0Io2Kl\n")
    result = tether("lint", str(repo.root), "-o", "json")
    assert result.code == 1
    [finding] = findings(result.stdout)
    assert finding["rule"] == "secret-high-entropy"
    repo.write(
        "tether.yaml",
        repo.read("tether.yaml").replace(
            "allowlist: []",
            f"allowlist:\n  - fingerprint: {finding['fingerprint']}\n    reason: documentation sample",
        ),
    )
    result = tether("lint", str(repo.root), "-o", "json")
    assert result.code == 0, result.stdout
    data = json.loads(result.stdout)
    assert data["suppressed"][0]["reason"] == "documentation sample"


def test_a_repository_without_tether_yaml(tether: Tether, make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("plain")
    repo.write(
        "apps/web/base/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\n",
    )
    repo.write("apps/web/base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n")
    result = tether("lint", str(repo.root), "-o", "json")
    assert result.code == 1
    assert {f["rule"] for f in findings(result.stdout)} == {"config-missing"}


# -- exit codes -------------------------------------------------------------------------------------


def test_exit_codes(scaffolded: Repo, tether: Tether, tmp_path: Path) -> None:
    assert tether("lint", str(scaffolded.root)).code == 0
    scaffolded.write("tether.yaml", "environments: [dev]\nteams: 3\n")
    result = tether("lint", str(scaffolded.root))
    assert result.code == 2 and "tether.yaml:2: teams: must be a list" in result.stderr
    result = tether("lint", str(scaffolded.root), "-o", "json")
    assert result.code == 2 and "must be a list" in json.loads(result.stdout)["error"]
    assert tether("lint", str(tmp_path / "nowhere")).code == 2
    assert tether("lint", str(scaffolded.root), "-o", "yaml").code == 2


def test_missing_schemas_are_a_note_not_a_failure(scaffolded: Repo, tether: Tether) -> None:
    result = tether("lint", str(scaffolded.root), "--kubernetes-version", "v9.9.9", "-o", "json")
    assert result.code == 0
    [note] = findings(result.stdout)
    assert note["rule"] == "schema-unavailable" and note["severity"] == "note"


# -- the repository's own example and docs ---------------------------------------------------------

PROJECT = Path(__file__).resolve().parents[2]


def test_the_example_repository_lints_clean(tether: Tether) -> None:
    result = tether("lint", str(PROJECT / "examples" / "lint" / "gitops"), "-o", "json")
    assert result.code == 0, result.stdout
    assert findings(result.stdout) == []


def test_every_rule_is_documented() -> None:
    from tether.policy.rules import RULES

    text = (PROJECT / "docs" / "lint.md").read_text()
    missing = [rule_id for rule_id in RULES if f"`{rule_id}`" not in text]
    assert missing == []


def test_only_some_environments(scaffolded: Repo, tether: Tether) -> None:
    overlay = "apps/web/overlays/prod/kustomization.yaml"
    scaffolded.write(overlay, scaffolded.read(overlay).replace('newTag: "0.1.0"', "newTag: latest"))
    everything = tether("lint", str(scaffolded.root), "-o", "json")
    assert {f["rule"] for f in findings(everything.stdout)} == {"image-latest"}
    dev = tether("lint", str(scaffolded.root), "--env", "dev", "-o", "json")
    assert dev.code == 0
    rendered = json.loads(dev.stdout)["checked"]["directories rendered"]
    assert rendered == 4  # platform, web and api dev overlays, and cluster dev-1
