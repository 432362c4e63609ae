"""The CLI starts without the stacks its one-shot commands do not use: ``tether rollback``,
``tether rollout``, ``tether get`` write an annotation or read an object, so starting them must
not import the audit store (SQLAlchemy), the sync engine, the agent or the dev cluster's PKI.
Each of those is imported by the command that needs it, when it runs (decision 0029)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Stacks a one-shot command must not pay for at start-up (each costs 0.1-1 s of CPU).
HEAVY = (
    "sqlalchemy",
    "tether.audit",
    "tether.reconcile.run",
    "tether.reconcile.engine",
    "tether.agent.apps",
    "tether.agent.specs",
    "tether.health",
    "tether.render",
    "tether.delivery.runner",
    "cryptography",
    "aiohttp",
)

_LOADED = """
import sys
from tether.cli.main import app
try:
    app(args=sys.argv[1:], prog_name="tether")
except SystemExit:
    pass
print("\\n".join(sorted(sys.modules)))
"""


def loaded_modules(*args: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``tether ARGS``."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *args], capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("rollback", "--help"),
        ("rollout", "status", "--help"),
        ("get", "app", "--help"),
        ("reconcile", "--help"),
    ],
)
def test_a_one_shot_command_starts_without_the_heavy_stacks(args: tuple[str, ...]) -> None:
    assert heavy_among(loaded_modules(*args)) == []


def test_sync_still_imports_its_engine_when_it_runs() -> None:
    # The check above could pass by never loading anything; a sync's options reach the engine.
    modules = loaded_modules("sync", "--app", "x", "--source", "/nonexistent-tether-repo")
    assert "tether.reconcile.run" in modules and "tether.audit" in modules
