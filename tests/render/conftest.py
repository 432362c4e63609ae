"""Fixtures of the render tests: an empty repository tree, and the real kustomize binary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tether.render import RenderSettings

KUSTOMIZE_VERSION = "v5.7.1"


def cached_kustomize() -> Path:
    """Where ``tether dev-cluster`` provisioning builds kustomize (honouring its cache settings)."""
    cache = os.environ.get("TETHER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "tether"
    )
    return Path(cache) / "bin" / f"kustomize-{KUSTOMIZE_VERSION}" / "kustomize"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty repository tree, with room for things "outside" it next to it."""
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def kustomize() -> Path:
    """The real kustomize binary ($KUSTOMIZE, else Tether's cache). Missing is a failure."""
    configured = os.environ.get("KUSTOMIZE")
    binary = Path(configured) if configured else cached_kustomize()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"kustomize binary not found at {binary}; build it or set $KUSTOMIZE")
    return binary


@pytest.fixture
def with_kustomize(kustomize: Path) -> RenderSettings:
    return RenderSettings(kustomize=kustomize, timeout=60)
