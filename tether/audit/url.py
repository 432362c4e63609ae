"""Where the audit store lives: turning what the user typed into a SQLAlchemy URL, and naming it
safely in messages.

Accepted forms:

- ``postgresql://user:password@host:5432/db`` (also ``postgres://``): PostgreSQL through psycopg 3;
- ``sqlite:///path/to/audit.db`` (``sqlite://`` alone is an in-memory database, for tests);
- a plain filesystem path (``~`` expanded), meaning a SQLite file;
- nothing: SQLite at ``$TETHER_STATE_DIR/audit.db``, else ``$XDG_STATE_HOME/tether/audit.db``,
  else ``~/.local/state/tether/audit.db``.

Every message names the database through :func:`masked`, which never shows the password.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tether.errors import AuditError

_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}
_SQLITE_SCHEMES = {"sqlite", "sqlite+pysqlite"}
# ``scheme://user:password@`` as typed; used only when a URL is too broken for SQLAlchemy to parse.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:)[^@]*(?P<at>@)")


@dataclass(frozen=True)
class Target:
    """A resolved audit database: the engine URL, how to name it, and the password to scrub."""

    url: URL
    display: str
    password: str
    sqlite_path: Path | None  # None for PostgreSQL and for in-memory SQLite

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def scrub(self, text: str) -> str:
        """``text`` with the password (raw and URL-encoded) replaced by ``***``."""
        if not self.password:
            return text
        for form in {self.password, quote(self.password, safe=""), quote(self.password)}:
            text = text.replace(form, "***")
        return text


def default_path() -> Path:
    """The SQLite file used when no URL is given."""
    state_dir = os.environ.get("TETHER_STATE_DIR")
    if state_dir:
        return Path(state_dir).expanduser() / "audit.db"
    xdg_state = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg_state).expanduser() if xdg_state else Path.home() / ".local" / "state"
    return base / "tether" / "audit.db"


def masked(url: str) -> str:
    """``url`` as it may appear in a message: ``postgresql://tether:***@host:5432/tether``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _USERINFO.sub(r"\g<head>***\g<at>", url)


def resolve(url: str | None) -> Target:
    """Turn an audit URL (or path, or None) into a :class:`Target`; AuditError if unusable."""
    if url is None:
        return _sqlite_file(default_path())
    if "://" not in url:
        return _sqlite_file(Path(url).expanduser())
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise AuditError(
            f"audit store URL {masked(url)} could not be parsed: use "
            "postgresql://user:password@host:port/database, sqlite:///path/to/audit.db "
            "or a plain file path"
        ) from None
    display = parsed.render_as_string(hide_password=True)
    password = str(parsed.password or "")
    if parsed.drivername in _POSTGRES_SCHEMES:
        return Target(parsed.set(drivername="postgresql+psycopg"), display, password, None)
    if parsed.drivername in _SQLITE_SCHEMES:
        if parsed.database in (None, "", ":memory:"):
            return Target(parsed.set(drivername="sqlite+pysqlite"), display, "", None)
        return _sqlite_file(Path(parsed.database).expanduser())
    raise AuditError(
        f"audit store URL {display} uses an unsupported database {parsed.drivername!r}: use "
        "postgresql://user:password@host:port/database, sqlite:///path/to/audit.db "
        "or a plain file path"
    )


def _sqlite_file(path: Path) -> Target:
    path = path.absolute()
    return Target(URL.create("sqlite+pysqlite", database=str(path)), str(path), "", path)
