"""Fixtures of the policy and lint tests: the real kustomize, the CLI in-process, repositories
built on disk (by ``tether init`` and by hand), real git, and a small schema cache."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.policy.minischema import DEFINITIONS, VERSION
from tether.cli.main import app
from tether.source.workspace import commit_all, init_repository

KUSTOMIZE_VERSION = "v5.7.1"


def _kustomize_path() -> Path:
    configured = os.environ.get("KUSTOMIZE")
    if configured:
        return Path(configured)
    cache = os.environ.get("TETHER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "tether"
    )
    return Path(cache) / "bin" / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"


@pytest.fixture(scope="session")
def kustomize() -> Path:
    """The real kustomize binary ($KUSTOMIZE, else Tether's cache). Missing is a failure."""
    binary = _kustomize_path()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"kustomize binary not found at {binary}; build it or set $KUSTOMIZE")
    return binary


@pytest.fixture(scope="session")
def schema_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema cache holding the small hand-written schema set of ``minischema``."""
    cache = tmp_path_factory.mktemp("schemas")
    (cache / VERSION).mkdir()
    (cache / VERSION / "definitions.json").write_text(json.dumps(DEFINITIONS))
    return cache


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Tether:
    """``tether`` run in-process, with the test schema cache and version."""

    schema_cache: Path
    kustomize: Path

    def __call__(self, *args: str) -> Result:
        extra: list[str] = []
        if args and args[0] == "lint":
            if not any(arg.startswith("--schemas-dir") for arg in args):
                extra.append(f"--schemas-dir={self.schema_cache}")
            if "--kubernetes-version" not in args:
                extra.append(f"--kubernetes-version={VERSION}")
        runner = CliRunner()
        result = runner.invoke(app, [*args, *extra], env={"COLUMNS": "200"})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def tether(schema_cache: Path, kustomize: Path) -> Tether:
    return Tether(schema_cache, kustomize)


class Repo:
    """A repository on disk that tests write files into, optionally under git."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, path: str, text: str) -> Repo:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return self

    def read(self, path: str) -> str:
        return (self.root / path).read_text()

    def remove(self, path: str) -> Repo:
        (self.root / path).unlink()
        return self

    def git_init(self) -> Repo:
        init_repository(self.root)
        return self

    def commit(self, message: str = "change") -> str:
        return commit_all(self.root, message)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], Repo]:
    def make(name: str = "gitops") -> Repo:
        return Repo(tmp_path / name)

    return make


@pytest.fixture
def scaffolded(tether: Tether, make_repo: Callable[[str], Repo]) -> Repo:
    """A repository made by ``tether init`` (apps web and api, dev/stage/prod, org acme)."""
    repo = make_repo("gitops")
    result = tether(
        "init",
        str(repo.root),
        "--apps",
        "web,api",
        "--envs",
        "dev,stage,prod",
        "--clusters",
        "dev-1=dev,prod-eu=prod",
        "--org",
        "acme",
    )
    assert result.code == 0, result.stderr
    return repo
