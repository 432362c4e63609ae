"""A throwaway local OCI registry on 127.0.0.1: the CNCF distribution registry, for OCI tests.

    LocalRegistry(directory, users={"alice": "secret"}, tls=True).start()   basic auth, https
    LocalRegistry(directory, token=TokenAuth(realm, service, issuer, certificate)).start()

``start()`` writes a ``config.yml`` into ``directory`` (filesystem storage under it, deletes
allowed, no access log), an ``htpasswd`` file with a bcrypt hash for each user, and, with
``tls``, a CA and a serving certificate for 127.0.0.1 from ``tether.devcluster.pki``; then runs
``registry serve`` on a free loopback port until ``stop()``. ``start()`` after ``stop()`` brings
the same registry back on the same port with its data (a registry outage in a test).

Authentication is one of:

- no users and no token: anonymous pushes and pulls;
- ``users``: HTTP basic auth checked against the htpasswd file (the registry answers 401 with
  ``WWW-Authenticate: Basic``);
- ``token``: the Docker token protocol. The registry answers 401 with ``WWW-Authenticate:
  Bearer realm=…,service=…,scope=…`` and accepts JWTs signed by the key of ``certificate``,
  issued by ``issuer`` for audience ``service``. The registry never issues tokens itself: a
  token service does (a cloud registry's auth endpoint). The tests run a small stand-in.

The binary is the cached build from ``provision.py`` (built once per machine).
"""

from __future__ import annotations

import os
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import httpx

from tether.devcluster import pki
from tether.devcluster.provision import TextLog, ensure_component
from tether.devcluster.servers import start_server, stop_server
from tether.devcluster.versions import REGISTRY_COMPONENT
from tether.errors import DevClusterError

_READY_SECONDS = 60.0


@dataclass(frozen=True)
class TokenAuth:
    """Where clients get tokens (``realm``), the registry's name in them (``service``), who
    signs them (``issuer``) and the PEM certificate of the signing key."""

    realm: str
    service: str
    issuer: str
    certificate: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalRegistry:
    """One registry server owned by the caller, with all its state under ``directory``."""

    directory: Path
    users: Mapping[str, str] = field(default_factory=dict)
    tls: bool = False
    token: TokenAuth | None = None
    port: int = field(default_factory=_free_port)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: what goes after ``oci://``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def ca_file(self) -> Path:
        """The CA bundle that signed the registry's serving certificate (``tls`` only)."""
        return self._pki.ca_cert

    @property
    def log_path(self) -> Path:
        return self.directory / "registry.log"

    @property
    def _pki(self) -> pki.Pki:
        return pki.Pki(self.directory / "pki")

    @property
    def _config_path(self) -> Path:
        return self.directory / "config.yml"

    def start(self, log: TextLog | None = None) -> LocalRegistry:
        """Write the configuration (first start only), then run until the registry answers."""
        binary = ensure_component(REGISTRY_COMPONENT, log) / "registry"
        if not self._config_path.is_file():
            self.directory.mkdir(parents=True, exist_ok=True)
            if self.tls:
                pki.create(self._pki.directory)
            self._config_path.write_text(self._config())
        self._process = start_server(
            [str(binary), "serve", str(self._config_path)],
            self.directory,
            {"PATH": os.environ.get("PATH", ""), "HOME": str(self.directory)},
            self.log_path,
        )
        self._wait_ready()
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server (its data stays; ``start()`` brings it back)."""
        process, self._process = self._process, None
        stop_server(process, grace)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.directory / 'data'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.host}",
            f"  secret: {secrets.token_hex(16)}",
        ]
        if self.tls:
            lines += [
                "  tls:",
                f"    certificate: {self._pki.serving_cert}",
                f"    key: {self._pki.serving_key}",
            ]
        if self.token is not None:
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token.realm}",
                f"    service: {self.token.service}",
                f"    issuer: {self.token.issuer}",
                f"    rootcertbundle: {self.token.certificate}",
            ]
        elif self.users:
            htpasswd = self.directory / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
                    for user, password in self.users.items()
                )
            )
            htpasswd.chmod(0o600)
            lines += ["auth:", "  htpasswd:", "    realm: tether", f"    path: {htpasswd}"]
        return "\n".join(lines) + "\n"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_SECONDS
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else False
        )
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise DevClusterError(
                    f"the registry exited with code {self._process.returncode} on start; its "
                    f"log {self.log_path} ends with:\n{self._log_tail()}"
                )
            try:
                answer = httpx.get(f"{self.url}/v2/", timeout=2.0, verify=verify)
                if answer.status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise DevClusterError(
            f"the registry did not answer on {self.url} within {_READY_SECONDS:g}s; its log "
            f"{self.log_path} ends with:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def running_registry(
    directory: Path,
    users: Mapping[str, str] | None = None,
    *,
    tls: bool = False,
    token: TokenAuth | None = None,
    log: TextLog | None = None,
) -> Iterator[LocalRegistry]:
    """A local registry for the duration of the ``with`` block."""
    registry = LocalRegistry(directory, dict(users or {}), tls, token).start(log)
    try:
        yield registry
    finally:
        registry.stop()
