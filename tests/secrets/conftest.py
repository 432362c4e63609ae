"""Fixtures of the secrets tests: fresh age keys, an environment without anyone's real keys,
and the real ``sops`` binary (built once per machine by Tether's provisioning)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tether.devcluster.provision import ensure_binary
from tether.secrets import Identities, generate_identity


@pytest.fixture(autouse=True)
def no_ambient_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identities come only from what a test sets up, never from the machine running it."""
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_EDITOR", "EDITOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


@dataclass(frozen=True)
class AgeKey:
    """A fresh age key pair, with its identity also written to a key file."""

    identity: str
    recipient: str
    file: Path

    @property
    def identities(self) -> Identities:
        return Identities.parse(self.identity, "test key")


def make_key(directory: Path, name: str) -> AgeKey:
    identity, recipient = generate_identity()
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / f"{name}.agekey"
    file.write_text(f"# public key: {recipient}\n{identity}\n")
    return AgeKey(identity, recipient, file)


@pytest.fixture
def alice(tmp_path: Path) -> AgeKey:
    return make_key(tmp_path / "keys", "alice")


@pytest.fixture
def bob(tmp_path: Path) -> AgeKey:
    return make_key(tmp_path / "keys", "bob")


@pytest.fixture(scope="session")
def sops_binary() -> Path:
    """The real sops, built from its Go module at the version pinned in ``versions.py``."""
    return ensure_binary("sops")


@dataclass
class Sops:
    """Runs the real sops with exactly one identity file and nothing else from the machine."""

    binary: Path
    home: Path

    def __call__(
        self, *args: str, key: AgeKey | None = None, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "SOPS_DISABLE_VERSION_CHECK": "1",
        }
        if key is not None:
            env["SOPS_AGE_KEY_FILE"] = str(key.file)
        result = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"sops {' '.join(args)} failed: {result.stderr}")
        return result


@pytest.fixture
def sops(sops_binary: Path, tmp_path: Path) -> Sops:
    home = tmp_path / "sops-home"
    home.mkdir()
    return Sops(sops_binary, home)
