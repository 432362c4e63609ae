"""A team's source paths hold for Helm charts in Git too (issue #12 part 3, with #9's charts).

Team ``web`` may deploy from ``apps/web/**``. A chart App of the team may not take its chart, a
values file, a post-render patch or a symlinked template from the platform's directory:
``tether sync --team web`` refuses it while rendering, naming the file and the team's paths,
before anything reaches the cluster. A chart that stays inside the team's paths passes those
checks (and then meets the team's other limits), which shows the refusals are about paths.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import Cli, GitRepo, Kubectl
from tests.helm.charts import write_chart
from tests.helm.test_sync import run, unique_group

pytestmark = pytest.mark.cluster

TEAMS = """environments: [dev]
teams:
  - name: web
    paths: ["apps/web/**"]
    namespaces: [{namespace}]
  - name: platform
    paths: ["platform/**"]
    namespaces: ["*"]
    clusterScoped: true
"""
PLATFORM_PASSWORD = "platform-only-password-4242"


def team_repo(repo: GitRepo, namespace: str) -> GitRepo:
    repo.write("tether.yaml", TEAMS.format(namespace=namespace))
    write_chart(repo.root / "apps" / "web" / "shop", "1.0.0", unique_group())
    write_chart(repo.root / "platform" / "shop", "1.0.0", unique_group())
    repo.write("apps/web/values.yaml", "db:\n  password: web-password\n")
    repo.write("platform/values.yaml", f"db:\n  password: {PLATFORM_PASSWORD}\n")
    repo.write(
        "platform/patch.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-web\nspec:\n  replicas: 3\n",
    )
    return repo


def sync_as_web(cli: Cli, repo: GitRepo, namespace: str, *chart: str) -> tuple[int, str]:
    code, report, shown = run(
        cli,
        "sync",
        "--source",
        str(repo.root),
        "--team",
        "web",
        "--app",
        "web",
        "-n",
        namespace,
        "--timeout",
        "0",
        *chart,
    )
    assert PLATFORM_PASSWORD not in shown
    return code, report.get("error", "")


def test_a_chart_outside_the_team_paths_is_refused(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    team_repo(repo, namespace).commit()
    code, error = sync_as_web(
        cli, repo, namespace, "--chart", "platform/shop", "--values", "apps/web/values.yaml"
    )
    assert code == 2
    assert "platform/shop" in error and "apps/web/**" in error
    assert kubectl.get("secret", "web-db", namespace) is None


def test_a_values_file_or_a_patch_outside_the_team_paths_is_refused(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    team_repo(repo, namespace).commit()
    code, error = sync_as_web(
        cli, repo, namespace, "--chart", "apps/web/shop", "--values", "platform/values.yaml"
    )
    assert code == 2
    assert "platform/values.yaml" in error and "apps/web/**" in error

    code, error = sync_as_web(
        cli,
        repo,
        namespace,
        "--chart",
        "apps/web/shop",
        "--values",
        "apps/web/values.yaml",
        "--post-render-patch",
        "platform/patch.yaml",
    )
    assert code == 2
    assert "platform/patch.yaml" in error and "apps/web/**" in error
    assert kubectl.get("secret", "web-db", namespace) is None


def test_a_template_symlinked_to_the_platform_is_refused(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    team_repo(repo, namespace)
    link = repo.root / "apps" / "web" / "shop" / "templates" / "stolen.yaml"
    os.symlink("../../../../platform/shop/templates/secret.yaml", link)
    repo.commit()
    code, error = sync_as_web(
        cli, repo, namespace, "--chart", "apps/web/shop", "--values", "apps/web/values.yaml"
    )
    assert code == 2
    assert "stolen.yaml" in error and "platform/shop/templates/secret.yaml" in error
    assert kubectl.get("secret", "web-db", namespace) is None


def test_a_chart_inside_the_team_paths_passes_the_path_checks(
    cli: Cli, repo: GitRepo, namespace: str
) -> None:
    team_repo(repo, namespace).commit()
    code, error = sync_as_web(
        cli, repo, namespace, "--chart", "apps/web/shop", "--values", "apps/web/values.yaml"
    )
    # the chart's CRD is cluster-scoped, which team web may not create: refused for that alone
    assert code == 2
    assert "cluster-scoped" in error and "outside" not in error
