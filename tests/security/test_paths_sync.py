"""A team's source paths, at sync time, on the real control plane with real git and kustomize.

Team ``web`` may deploy from ``apps/web/**``. Each test commits one way of reaching the
platform's files from there (a ``..`` path, a symlink, a symlinked directory, a kustomize
resource, base, component, patch, generator or replacement) and runs ``tether sync --team web``:
the sync is refused before anything is applied, and the message names the file that points
outside and the paths the team may use. The platform's SOPS Secret, reached through a base, is
never decrypted into the team's namespace; without a team limit the same kustomization does
deploy it, which shows the test's base is real.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable

import pytest

from tests.conftest import Cli, GitRepo, Kubectl
from tests.security.platform_secret import store_age_key, write_platform_secret
from tests.sync.manifests import configmap

ALLOWED = "the paths team 'web' may deploy from (apps/web/**, apps/shared/**)"
PLATFORM_VALUE = "platform-only-value"
PASSWORD = "platform-db-password-31337"


def tether_yaml(namespace: str) -> str:
    return f"""environments: [dev]
teams:
  - name: web
    paths: ["apps/web/**", "apps/shared/**"]
    namespaces: [{namespace}]
  - name: platform
    paths: ["platform/**"]
    namespaces: ["*"]
    clusterScoped: true
"""


def platform_configmap() -> str:
    return configmap("platform-settings").replace("key: value", f"key: {PLATFORM_VALUE}")


def sync(cli: Cli, repo: GitRepo, path: str, namespace: str, *extra: str) -> tuple[int, dict]:
    code, out, err = cli(
        "sync",
        "--source",
        str(repo.root),
        "--path",
        path,
        "--app",
        "web",
        "-n",
        namespace,
        "--timeout",
        "0",
        "-o",
        "json",
        *extra,
    )
    assert out, err
    return code, json.loads(out)


def base_repo(repo: GitRepo, namespace: str) -> GitRepo:
    repo.write("tether.yaml", tether_yaml(namespace))
    repo.write("platform/cm.yaml", platform_configmap())
    repo.write("platform/kustomization.yaml", "resources: [cm.yaml]\n")
    repo.write("platform/token.env", f"TOKEN={PLATFORM_VALUE}\n")
    repo.write(
        "platform/patch.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"
        f"data: {{stolen: {PLATFORM_VALUE}}}\n",
    )
    repo.write(
        "platform/component/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cm.yaml]\n",
    )
    repo.write("platform/component/cm.yaml", platform_configmap())
    repo.write("apps/web/cm.yaml", configmap("web"))
    return repo


def kustomization(text: str) -> Callable[[GitRepo], str]:
    """A case: ``apps/web/kustomization.yaml`` is ``text``; the file the message must name."""

    def write(repo: GitRepo) -> str:
        repo.write("apps/web/kustomization.yaml", text)
        return "apps/web/kustomization.yaml:"

    return write


def symlinked_file(repo: GitRepo) -> str:
    os.symlink("../../platform/cm.yaml", repo.root / "apps/web/platform.yaml")
    return "apps/web/platform.yaml: symlink points to platform/cm.yaml"


def symlinked_directory(repo: GitRepo) -> str:
    os.symlink("../../platform", repo.root / "apps/web/vendor", target_is_directory=True)
    return "apps/web/vendor: symlink points to platform"


def symlinked_file_in_a_kustomization(repo: GitRepo) -> str:
    os.symlink("../../platform/cm.yaml", repo.root / "apps/web/platform.yaml")
    repo.write("apps/web/kustomization.yaml", "resources: [cm.yaml, platform.yaml]\n")
    return (
        "apps/web/kustomization.yaml:1: resources entry 'platform.yaml' points to platform/cm.yaml"
    )


CASES = {
    "symlinked file": symlinked_file,
    "symlinked directory": symlinked_directory,
    "symlinked file in a kustomization": symlinked_file_in_a_kustomization,
    "resource file": kustomization("resources:\n  - cm.yaml\n  - ../../platform/cm.yaml\n"),
    "resource directory": kustomization("resources:\n  - cm.yaml\n  - ../../platform\n"),
    # kustomize takes a scalar with any tag as a path; so must the checks
    "resource with a YAML tag": kustomization("resources:\n  - cm.yaml\n  - !x ../../platform\n"),
    "base": kustomization("bases:\n  - ../../platform\nresources:\n  - cm.yaml\n"),
    "component": kustomization("resources: [cm.yaml]\ncomponents:\n  - ../../platform/component\n"),
    "patches path": kustomization(
        "resources: [cm.yaml]\npatches:\n  - path: ../../platform/patch.yaml\n"
    ),
    "patchesStrategicMerge": kustomization(
        "resources: [cm.yaml]\npatchesStrategicMerge:\n  - ../../platform/patch.yaml\n"
    ),
    "generator file": kustomization(
        "configMapGenerator:\n  - name: stolen\n    files:\n      - token=../../platform/token.env\n"
    ),
    "generator envs": kustomization(
        "configMapGenerator:\n  - name: stolen\n    envs:\n      - ../../platform/token.env\n"
    ),
    "replacements path": kustomization(
        "resources: [cm.yaml]\nreplacements:\n  - path: ../../platform/patch.yaml\n"
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_team_cannot_reach_the_platforms_files(
    case: str, cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    base_repo(repo, namespace)
    named = CASES[case](repo)
    repo.commit(case)

    code, report = sync(cli, repo, "apps/web", namespace, "--team", "web")

    assert code == 2
    error = report["error"]
    assert named in error, error
    assert ALLOWED in error, error
    assert PLATFORM_VALUE not in error
    assert kubectl.get("configmap", "web", namespace) is None
    assert kubectl.get("configmap", "platform-settings", namespace) is None


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("apps/web/../../platform", "it has a '..' segment"),
        ("apps/web/..", "it has a '..' segment"),
        ("/platform", "it is absolute"),
        ("apps\\web", "it contains a backslash"),
        ("apps/web\x00/../../platform", "it contains a NUL"),
    ],
)
def test_an_unsafe_source_path_is_refused_naming_the_app_and_the_path(
    path: str, reason: str, cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    base_repo(repo, namespace).commit()
    for team in (("--team", "web"), ()):
        code, report = sync(cli, repo, path, namespace, *team)
        assert code == 2
        expected = f"app '{namespace}.web': source path {path!r} is refused: {reason}"
        assert expected in report["error"]
    assert kubectl.get("configmap", "platform-settings", namespace) is None


def test_the_team_may_sync_its_own_directory_and_what_its_paths_allow(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    base_repo(repo, namespace)
    repo.write("apps/shared/cm.yaml", configmap("shared"))
    repo.write("apps/shared/kustomization.yaml", "resources: [cm.yaml]\n")
    repo.write("apps/web/kustomization.yaml", "resources: [cm.yaml, linked]\n")
    os.symlink("../shared", repo.root / "apps/web/linked", target_is_directory=True)
    repo.commit("the web team uses a shared base, through a symlink")

    # apps/web/** includes apps/web itself; apps/shared (reached by a symlink) is allowed too.
    code, report = sync(cli, repo, "apps/web", namespace, "--team", "web")

    assert code == 0, report["error"]
    assert kubectl.get("configmap", "web", namespace) is not None
    assert kubectl.get("configmap", "shared", namespace) is not None

    code, report = sync(cli, repo, "platform", namespace, "--team", "web")
    assert code == 2
    assert "path 'platform' is outside what team 'web' may deploy from" in report["error"]


def test_the_platforms_sops_secret_is_never_decrypted_for_the_team(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    recipient = store_age_key(kubectl, namespace)
    base_repo(repo, namespace)
    write_platform_secret(repo, recipient, PASSWORD)
    repo.write(
        "apps/web/kustomization.yaml",
        "resources:\n  - cm.yaml\n  - ../../platform/secrets\n",
    ).commit("the web team borrows the platform's secrets")
    keys = ("--decryption-secret", f"{namespace}/age-keys")

    code, report = sync(cli, repo, "apps/web", namespace, "--team", "web", *keys)

    assert code == 2
    error = report["error"]
    assert (
        "apps/web/kustomization.yaml:3: resources entry '../../platform/secrets' points to "
        f"platform/secrets, outside {ALLOWED}"
    ) in error
    assert PASSWORD not in error
    assert kubectl.get("secret", "platform-db", namespace) is None
    assert kubectl.get("configmap", "web", namespace) is None

    # Without a team's limits (the platform's own sync), the same kustomization deploys the
    # decrypted Secret: the base above really leads to it.
    code, report = sync(cli, repo, "apps/web", namespace, *keys)
    assert code == 0, report["error"]
    deployed = kubectl.get("secret", "platform-db", namespace)
    assert deployed is not None
    assert base64.b64decode(deployed["data"]["password"]).decode() == PASSWORD
