"""``tether lint`` never reads outside the repository: a symlink out of it (to an age key on the
CI machine, a directory of them, tether.yaml itself) is a finding, and what it points to is
never opened, scanned or printed. Real git, real kustomize, the CLI in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.policy.conftest import Repo, Tether, _kustomize_path
from tests.policy.minischema import DEFINITIONS, VERSION
from tether.secrets import generate_identity


@pytest.fixture
def tether(tmp_path: Path) -> Tether:
    cache = tmp_path / "schemas"
    (cache / VERSION).mkdir(parents=True)
    (cache / VERSION / "definitions.json").write_text(json.dumps(DEFINITIONS))
    return Tether(cache, _kustomize_path())


@pytest.fixture
def age_key(tmp_path: Path) -> tuple[Path, str]:
    """A fake CI age key outside the repository, and its identity line."""
    identity, _ = generate_identity()
    key = tmp_path / "ci-secrets" / "keys.txt"
    key.parent.mkdir()
    key.write_text(f"# the CI machine's key\n{identity}\n")
    return key, identity


def scaffold(tether: Tether, root: Path) -> Repo:
    result = tether("init", str(root), "--apps", "web", "--envs", "dev", "--clusters", "dev-1=dev")
    assert result.code == 0, result.stderr
    return Repo(root)


def test_symlinks_out_of_the_repository_are_findings_and_never_read(
    tether: Tether, tmp_path: Path, age_key: tuple[Path, str]
) -> None:
    key, identity = age_key
    repo = scaffold(tether, tmp_path / "gitops").git_init()
    os.symlink(key, repo.root / "apps/web/base/keys.yaml")
    os.symlink(key.parent, repo.root / "apps/web/base/vendor", target_is_directory=True)
    os.symlink("../../../README.md", repo.root / "apps/web/base/readme.md")  # stays inside
    repo.commit("links")

    for output in ("json", "text", "sarif"):
        result = tether("lint", str(repo.root), "-o", output)
        assert result.code == 1
        assert identity not in result.stdout + result.stderr
        assert "AGE-SECRET-KEY" not in result.stdout + result.stderr

    found = json.loads(tether("lint", str(repo.root), "-o", "json").stdout)["findings"]
    escapes = {f["path"]: f["message"] for f in found if f["rule"] == "layout-symlink-outside"}
    assert set(escapes) == {"apps/web/base/keys.yaml", "apps/web/base/vendor"}
    assert escapes["apps/web/base/keys.yaml"] == (
        f"apps/web/base/keys.yaml is a symlink to {key}, outside the repository: lint does not "
        "read it, and a render refuses it"
    )
    assert not [f for f in found if f["rule"].startswith("secret-")]


def test_a_symlinked_tether_yaml_out_of_the_repository_is_not_read(
    tether: Tether, tmp_path: Path, age_key: tuple[Path, str]
) -> None:
    key, identity = age_key
    repo = scaffold(tether, tmp_path / "gitops")
    (repo.root / "tether.yaml").unlink()
    os.symlink(key, repo.root / "tether.yaml")

    result = tether("lint", str(repo.root), "-o", "json")

    assert identity not in result.stdout + result.stderr
    rules = {(f["rule"], f["path"]) for f in json.loads(result.stdout)["findings"]}
    assert ("layout-symlink-outside", "tether.yaml") in rules
    assert ("config-missing", "tether.yaml") in rules
