"""A real PostgreSQL server for tests, started once per session in a temporary directory.

Use it from a conftest::

    from tests.postgres import postgres_url  # noqa: F401  (registers the fixture)

``postgres_url`` yields ``postgresql://tether:<password>@127.0.0.1:<port>/tether``: a ``tether``
role with a real password (scram-sha-256 over TCP) that owns the ``tether`` database and may
create more (see :func:`fresh_database` for one database per test).

The server binaries are looked up on PATH, then in ``/usr/lib/postgresql/<version>/bin``. When they
are missing the tests fail (never skip): the CI script has to install them.

PostgreSQL refuses to run as root. Under root the directory is handed to ``nobody`` and every
server command runs as that user (``subprocess`` ``user=``/``group=``, supplementary groups
dropped); otherwise they run as the current user. The server listens on 127.0.0.1 only, on a free
port, with its unix socket inside the temporary directory; durability is switched off for speed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    "the tests need a real PostgreSQL server but initdb, pg_ctl and postgres were found neither on "
    "PATH nor in /usr/lib/postgresql/*/bin: .ci/run must `apt-get install -y postgresql` "
    "before running pytest"
)
UNPRIVILEGED_USER = "nobody"
ADMIN_USER = "postgres"
APP_USER = "tether"
APP_DATABASE = "tether"
START_ATTEMPTS = 3


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed, or could not be initialised or started."""


def find_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and postgres (PATH first, newest version next)."""
    on_path = [shutil.which(name) for name in BINARIES]
    if all(on_path):
        return Path(str(on_path[0])).resolve().parent
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    for bin_dir in sorted(versions, key=_version_key, reverse=True):
        if all((Path(bin_dir) / name).is_file() for name in BINARIES):
            return Path(bin_dir)
    raise PostgresUnavailable(INSTALL_HINT)


def _version_key(bin_dir: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", Path(bin_dir).parent.name))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """One throwaway PostgreSQL cluster under ``root``; :meth:`start` it, then :meth:`stop` it."""

    bin_dir: Path
    root: Path
    password: str
    port: int = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        """The app role's URL, password included."""
        return f"postgresql://{APP_USER}:{self.password}@127.0.0.1:{self.port}/{APP_DATABASE}"

    def start(self) -> None:
        """Initialise the cluster, start the server and create the ``tether`` role and database."""
        self._prepare_root()
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            ADMIN_USER,
            "--auth-local=trust",  # the socket lives in a directory only the server user can open
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = _free_port()
            try:
                self._pg_ctl_start()
                break
            except PostgresUnavailable:  # most likely the port was taken meanwhile
                if attempt == START_ATTEMPTS:
                    raise
        self._create_app_role()

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "-m", "fast", "-w")

    def _prepare_root(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            account = pwd.getpwnam(UNPRIVILEGED_USER)
            for path in (self.root, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.root.chmod(0o700)

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--options",
            options,
            "-w",
            "-t",
            "30",
        )

    def _create_app_role(self) -> None:
        admin = psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=ADMIN_USER,
            dbname="postgres",
            autocommit=True,
        )
        with admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(APP_USER), sql.Literal(self.password)
                )
            )
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(APP_DATABASE), sql.Identifier(APP_USER)
                )
            )

    def _run(self, program: str, *args: str) -> None:
        as_root = os.geteuid() == 0
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            cwd=self.root,  # the caller's directory may be unreadable to the server user
            env=environment,
            user=UNPRIVILEGED_USER if as_root else None,
            group=pwd.getpwnam(UNPRIVILEGED_USER).pw_gid if as_root else None,
            extra_groups=[] if as_root else None,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise PostgresUnavailable(
                f"{program} {' '.join(args)} failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}\n{log[-4000:]}"
            )


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started server in a fresh temporary directory, stopped and removed afterwards."""
    bin_dir = find_bin_dir()
    # Not pytest's tmp_path: its base directory is private to the current user, and under root
    # the server runs as someone else who must be able to reach its own directory.
    root = Path(tempfile.mkdtemp(prefix="tether-postgres-"))
    server = PostgresServer(bin_dir, root, password=secrets.token_urlsafe(18))
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(url: str, name: str) -> Iterator[str]:
    """A new, empty database on the server of ``url`` (whose role may create databases).

    Yields ``url`` pointing at it, and drops it afterwards.
    """
    base, _, _ = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql://tether:<password>@127.0.0.1:<port>/tether`` on a server for this session."""
    try:
        with running_postgres() as server:
            yield server.url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
