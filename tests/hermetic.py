"""Fixtures that keep the machine's own configuration out of the tests.

Import the ones a test module or conftest needs; importing registers them, and both are
``autouse``::

    from tests.hermetic import hermetic_git  # noqa: F401  (registers the fixture)

``hermetic_git`` gives every git command the test (or a process it starts) runs an empty global
configuration and no system one (no credential helpers, URL rewrites or identity of the machine),
no terminal prompt, and none of the variables that would point git at another repository or ssh
program. ``machine_cache_dir_ignored`` drops ``TETHER_CACHE_DIR`` for tests of the default cache
location; agent tests keep it, since the agent they start finds its binaries there.
"""

from __future__ import annotations

import pytest

REDIRECTING_GIT_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_SSH", "GIT_SSH_COMMAND")


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's git configuration (helpers, rewrites, identity) out of the tests."""
    empty = tmp_path_factory.getbasetemp() / "empty-gitconfig"
    empty.touch()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    for name in REDIRECTING_GIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def machine_cache_dir_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tether's cache at its default place, whatever ``TETHER_CACHE_DIR`` the machine sets."""
    monkeypatch.delenv("TETHER_CACHE_DIR", raising=False)
