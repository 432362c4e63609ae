"""``tether lint --changed-since``: real git commits, real work trees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.policy.conftest import Repo, Tether
from tether.errors import SourceError
from tether.source.changes import changed_files, repository_files


@pytest.fixture
def versioned(scaffolded: Repo) -> Repo:
    scaffolded.git_init()
    scaffolded.commit("tether init")
    return scaffolded


def review(result_stdout: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result_stdout)["review"]
    return data


def change_rules(result_stdout: str) -> set[str]:
    return {
        f["rule"] for f in json.loads(result_stdout)["findings"] if f["rule"].startswith("change-")
    }


def test_a_change_mixing_platform_and_apps(versioned: Repo, tether: Tether) -> None:
    repo = versioned
    repo.write(
        "platform/base/namespaces.yaml",
        repo.read("platform/base/namespaces.yaml").replace(
            "tether.dev/team: web", "tether.dev/team: web\n    tier: front"
        ),
    )
    repo.write(
        "apps/web/base/deployment.yaml",
        repo.read("apps/web/base/deployment.yaml").replace("replicas: 1", "replicas: 3"),
    )
    repo.commit("platform and app together")
    result = tether("lint", str(repo.root), "--changed-since", "HEAD~1", "-o", "json")
    assert result.code == 1
    assert change_rules(result.stdout) == {"change-mixes-layers", "change-multiple-teams"}
    data = review(result.stdout)
    assert data["files"] == ["apps/web/base/deployment.yaml", "platform/base/namespaces.yaml"]
    assert data["layers"] == ["apps", "platform"]
    assert data["owners"] == ["@acme/platform", "@acme/web"]
    assert data["reachesEveryEnvironment"] is True

    text = tether("lint", str(repo.root), "--changed-since", "HEAD~1")
    assert "error [change-mixes-layers]" in text.stdout
    assert "review needed from: @acme/platform @acme/web" in text.stdout


def test_a_change_across_two_teams_names_both_owners(versioned: Repo, tether: Tether) -> None:
    repo = versioned
    for app in ("web", "api"):
        overlay = f"apps/{app}/overlays/dev/kustomization.yaml"
        repo.write(overlay, repo.read(overlay).replace('newTag: "0.1.0"', 'newTag: "0.2.0"'))
    repo.commit("bump web and api in dev")
    result = tether("lint", str(repo.root), "--changed-since", "HEAD~1", "-o", "json")
    assert result.code == 1
    assert change_rules(result.stdout) == {"change-multiple-teams"}
    data = review(result.stdout)
    assert data["teams"] == ["web", "api"]
    assert data["owners"] == ["@acme/web", "@acme/api"]
    assert data["environments"] == ["dev"]
    finding = next(
        f for f in json.loads(result.stdout)["findings"] if f["rule"] == "change-multiple-teams"
    )
    assert finding["severity"] == "warning"
    text = tether("lint", str(repo.root), "--changed-since", "HEAD~1")
    assert "owning teams: web, api" in text.stdout
    assert "review needed from: @acme/web @acme/api" in text.stdout


def test_one_environment_per_change(versioned: Repo, tether: Tether) -> None:
    repo = versioned
    for environment in ("dev", "prod"):
        overlay = f"apps/web/overlays/{environment}/kustomization.yaml"
        repo.write(overlay, repo.read(overlay).replace('newTag: "0.1.0"', 'newTag: "0.2.0"'))
    # uncommitted work counts too: the change is judged up to the work tree
    result = tether("lint", str(repo.root), "--changed-since", "HEAD", "-o", "json")
    assert result.code == 1
    assert change_rules(result.stdout) == {"change-multiple-environments"}
    assert review(result.stdout)["environments"] == ["dev", "prod"]
    # the policy can be switched off
    repo.write(
        "tether.yaml",
        repo.read("tether.yaml").replace(
            "oneEnvironmentPerChange: true", "oneEnvironmentPerChange: false"
        ),
    )
    result = tether("lint", str(repo.root), "--changed-since", "HEAD", "-o", "json")
    assert change_rules(result.stdout) == {"change-multiple-teams"}  # tether.yaml: platform team


def test_a_clean_single_team_change(versioned: Repo, tether: Tether) -> None:
    repo = versioned
    overlay = "apps/web/overlays/dev/kustomization.yaml"
    repo.write(overlay, repo.read(overlay).replace('newTag: "0.1.0"', 'newTag: "0.2.0"'))
    repo.write("apps/web/overlays/dev/notes.md", "why 0.2.0\n")  # untracked: part of the change
    result = tether("lint", str(repo.root), "--changed-since", "HEAD", "-o", "json")
    assert result.code == 0, result.stdout
    data = review(result.stdout)
    assert data["files"] == [overlay, "apps/web/overlays/dev/notes.md"]
    assert data["owners"] == ["@acme/web"]
    assert data["reachesEveryEnvironment"] is False


def test_unknown_ref_is_an_error(versioned: Repo, tether: Tether) -> None:
    result = tether("lint", str(versioned.root), "--changed-since", "no-such-branch")
    assert result.code == 2
    assert "unknown ref 'no-such-branch'" in result.stderr


def test_changed_files_on_a_branch_use_the_merge_base(versioned: Repo) -> None:
    repo = versioned
    git = ["git", "-C", str(repo.root)]
    subprocess.run([*git, "checkout", "-q", "-b", "feature"], check=True)
    repo.write("apps/web/base/extra.yaml", "a: 1\n")
    repo.commit("feature work")
    subprocess.run([*git, "checkout", "-q", "main"], check=True)
    repo.write("apps/api/base/other.yaml", "b: 1\n")
    repo.commit("main moves on")
    subprocess.run([*git, "checkout", "-q", "feature"], check=True)
    subprocess.run([*git, "mv", "apps/web/base/service.yaml", "apps/web/base/svc.yaml"], check=True)
    assert changed_files(repo.root, "main") == [
        ("A", "apps/web/base/extra.yaml", ""),
        ("R", "apps/web/base/svc.yaml", "apps/web/base/service.yaml"),
    ]


def test_repository_files_honour_gitignore(versioned: Repo, tmp_path: Path) -> None:
    repo = versioned
    repo.write(".gitignore", "*.local\n")
    repo.write("apps/web/base/secret.local", "password=hunter22\n")
    files = repository_files(repo.root)
    assert files is not None
    assert ".gitignore" in files and "apps/web/base/secret.local" not in files
    plain = tmp_path / "plain"
    plain.mkdir()
    assert repository_files(plain) is None
    with pytest.raises(SourceError):
        changed_files(plain, "HEAD")
