"""Fixtures of the OCI tests: a real CNCF distribution registry (built once per machine by
Tether's provisioning) on loopback, with htpasswd users, and the credentials to reach it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tether.devcluster.provision import ensure_binary
from tether.devcluster.registry import LocalRegistry, running_registry
from tether.source.oci import OCIAuth, TokenFile

USER = "pusher"


@dataclass(frozen=True)
class Registry:
    """A running registry, a user's password file and the auth that uses it."""

    server: LocalRegistry
    password: str
    password_file: Path

    @property
    def host(self) -> str:
        return self.server.host

    def ref(self, repository: str) -> str:
        return f"oci://{self.host}/{repository}"

    @property
    def auth(self) -> OCIAuth:
        return OCIAuth(TokenFile(self.password_file, USER), plain_http=True)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One basic-auth registry over plain http for the whole session."""
    root = tmp_path_factory.mktemp("registry")
    password = secrets.token_urlsafe(16)
    password_file = root / "password"
    password_file.write_text(password + "\n")
    with running_registry(root / "server", {USER: password}) as server:
        yield Registry(server, password, password_file)


@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure_binary("helm")


@pytest.fixture
def repository() -> str:
    """A fresh repository name for one test."""
    return f"t/{secrets.token_hex(5)}"


def write_manifests(directory: Path, name: str = "web", data: str = "one") -> Path:
    """A small directory of plain manifests: one ConfigMap."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "configmap.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {data}\n"
    )
    return directory
