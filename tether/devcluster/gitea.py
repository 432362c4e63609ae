"""A throwaway local Gitea on 127.0.0.1: the forge for delivery tests and the demo.

``LocalGitea(directory).start()`` writes an ``app.ini`` into ``directory`` (SQLite, no SSH, no
mailer, no cron, offline, API only), migrates the database, creates an admin user with an
access token, and runs ``gitea web`` on a free loopback port until ``stop()``. ``start()`` after
``stop()`` brings the same server back on the same port with its data (a forge outage in a
test).

The binary is the cached build from ``provision.py`` (built once per machine); it reads its
locales and templates from the module source kept next to it (``STATIC_ROOT_PATH``).

Gitea refuses to run as root. When Tether runs as root (CI containers), the child process gets
``GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true``: this server listens on loopback only, lives in
a temporary directory and holds nothing but test data.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tether.devcluster.provision import TextLog, ensure_component, gitea_static_root
from tether.devcluster.servers import start_server, stop_server
from tether.devcluster.versions import GITEA_COMPONENT
from tether.errors import DevClusterError

ADMIN_USER = "tether-admin"
ADMIN_EMAIL = "tether-admin@localhost.invalid"
_READY_SECONDS = 90.0
# How long SQLite waits for a lock (Gitea's default is 0.5 s). A failed token lookup does not
# fail the request: Gitea treats it as unauthenticated ("token is required", 401), which on a
# loaded machine made a valid admin token look wrong. WAL keeps readers off the writer's lock.
_SQLITE_BUSY_MS = 20_000
_ROOT_OVERRIDE = "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT"


@dataclass(frozen=True)
class GiteaAdmin:
    """The admin account the local Gitea was set up with."""

    username: str
    password: str
    token: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalGitea:
    """One Gitea server owned by the caller, with all its state under ``directory``."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: GiteaAdmin | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> GiteaAdmin:
        if self._admin is None:
            raise DevClusterError("the local Gitea has not been started yet: call start() first")
        return self._admin

    @property
    def config_path(self) -> Path:
        return self.directory / "app.ini"

    @property
    def log_path(self) -> Path:
        return self.directory / "gitea.log"

    def start(self, log: TextLog | None = None) -> LocalGitea:
        """Set the server up on first use, then run it until it answers its API."""
        # The cached build, never a gitea found on PATH: its assets are the cached source copy.
        binary = ensure_component(GITEA_COMPONENT, log) / "gitea"
        if self._admin is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._write_config()
            self._run(binary, "migrate")
            self._admin = self._create_admin(binary)
        self._process = start_server(
            [str(binary), "web", *self._config_args()], self.directory, self._env(), self.log_path
        )
        self._wait_ready()
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server (its data stays, ``start()`` brings it back)."""
        process, self._process = self._process, None
        stop_server(process, grace)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- setup -------------------------------------------------------------------------------

    def _config_args(self) -> list[str]:
        return ["--config", str(self.config_path), "--work-path", str(self.directory)]

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "GITEA_WORK_DIR": str(self.directory), "HOME": str(self.directory)}
        if os.geteuid() == 0:
            env[_ROOT_OVERRIDE] = "true"
        return env

    def _write_config(self) -> None:
        data = self.directory / "data"
        self.config_path.write_text(
            f"""APP_NAME = Tether local forge
RUN_USER = {getpass.getuser()}
RUN_MODE = prod
WORK_PATH = {self.directory}

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {self.port}
ROOT_URL = {self.url}/
DOMAIN = 127.0.0.1
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = {data}
STATIC_ROOT_PATH = {gitea_static_root()}

[database]
DB_TYPE = sqlite3
PATH = {data}/gitea.db
SQLITE_TIMEOUT = {_SQLITE_BUSY_MS}
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = {self.directory}/repositories
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = {secrets.token_urlsafe(32)}
INTERNAL_TOKEN = {secrets.token_urlsafe(48)}
PASSWORD_HASH_ALGO = pbkdf2

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true

[webhook]
ALLOWED_HOST_LIST = loopback

[cron]
ENABLED = false

[indexer]
REPO_INDEXER_ENABLED = false

[mailer]
ENABLED = false

[session]
PROVIDER = memory

[log]
MODE = console
LEVEL = Warn
ROOT_PATH = {self.directory}/log
"""
        )

    def _run(self, binary: Path, *args: str) -> str:
        result = subprocess.run(
            [str(binary), *args, *self._config_args()],
            cwd=self.directory,
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise DevClusterError(f"`gitea {args[0]} …` failed in {self.directory}:\n{tail}")
        return result.stdout

    def _create_admin(self, binary: Path) -> GiteaAdmin:
        password = secrets.token_urlsafe(18)
        self._run(
            binary,
            *("admin", "user", "create", "--admin", "--must-change-password=false"),
            *("--username", ADMIN_USER, "--password", password, "--email", ADMIN_EMAIL),
        )
        token_output = self._run(
            binary,
            *("admin", "user", "generate-access-token", "--raw", "--scopes", "all"),
            *("--username", ADMIN_USER, "--token-name", "tether"),
        )
        token = token_output.strip().splitlines()[-1].strip() if token_output.strip() else ""
        if not token:
            raise DevClusterError(
                f"gitea printed no access token for {ADMIN_USER} in {self.directory}"
            )
        return GiteaAdmin(ADMIN_USER, password, token)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_SECONDS
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise DevClusterError(
                    f"gitea exited with code {self._process.returncode} on start; its log "
                    f"{self.log_path} ends with:\n{self._log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/api/v1/version", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise DevClusterError(
            f"gitea did not answer on {self.url} within {_READY_SECONDS:g}s; its log "
            f"{self.log_path} ends with:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def running_gitea(directory: Path, log: TextLog | None = None) -> Iterator[LocalGitea]:
    """A local Gitea for the duration of the ``with`` block."""
    gitea = LocalGitea(directory).start(log)
    try:
        yield gitea
    finally:
        gitea.stop()
