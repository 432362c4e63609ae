"""Real HTTP servers on 127.0.0.1 for the credential tests: a private git host and a fake GitHub.

``GitHttpServer`` serves a bare repository over git's dumb HTTP protocol to whoever presents one
of its accepted ``(username, password)`` pairs with basic auth; the pairs can change while it
runs, as a real host's do when a token is rotated or revoked. ``FakeGitHubApi`` stands in for
GitHub's "create an installation access token" endpoint.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.source.gitrepo import Origin, git


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    """Run ``server`` on a thread for the duration of the block."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _GitHost(ThreadingHTTPServer):
    accepted: set[tuple[str, str]]
    attempts: list[str]


class _GitHandler(SimpleHTTPRequestHandler):
    server: _GitHost

    def do_GET(self) -> None:
        presented = _basic_auth(self.headers.get("Authorization", ""))
        if presented is not None:
            self.server.attempts.append(presented[0])
        if presented not in self.server.accepted:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme != "Basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


class GitHttpServer:
    """A private git host: ``repo.git`` (the origin, pushed) served over dumb HTTP with basic auth.

    ``accepted`` is the set of ``(username, password)`` pairs let in right now; ``attempts`` the
    usernames presented so far.
    """

    def __init__(self, origin: Origin, root: Path) -> None:
        self.origin = origin
        root.mkdir(parents=True)
        self.bare = origin.bare_clone(root / "repo.git")
        git(self.bare, "update-server-info")
        self._server = _GitHost(
            ("127.0.0.1", 0), functools.partial(_GitHandler, directory=str(root))
        )
        self._server.accepted = set()
        self._server.attempts = []

    @property
    def accepted(self) -> set[tuple[str, str]]:
        return self._server.accepted

    @property
    def attempts(self) -> list[str]:
        return self._server.attempts

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/repo.git"

    def accept_only(self, username: str, password: str) -> None:
        self._server.accepted.clear()
        self._server.accepted.add((username, password))

    def push(self, files: dict[str, str]) -> str:
        """Commit ``files`` in the origin, publish the commit, and return its SHA."""
        commit = self.origin.commit(files, message="published")
        self.origin.git("push", "--quiet", str(self.bare), "main")
        git(self.bare, "update-server-info")
        return commit

    @contextmanager
    def running(self) -> Iterator[GitHttpServer]:
        with serving(self._server):
            yield self


@dataclass
class FakeGitHubState:
    """What the fake was set up with, and what it saw."""

    app_id: str
    installation_id: str
    public_key: rsa.RSAPublicKey
    clock: Callable[[], float]
    on_mint: Callable[[str], None]
    token_lifetime: float = 3600.0
    redirect_to: str | None = None
    answer_with: bytes | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    minted: list[str] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)


class _FakeGitHubServer(ThreadingHTTPServer):
    state: FakeGitHubState


class _FakeGitHubHandler(BaseHTTPRequestHandler):
    server: _FakeGitHubServer

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        state.requests.append(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        )
        if state.redirect_to is not None:
            self._send(307, b"", location=state.redirect_to)
            return
        if self.path != f"/app/installations/{state.installation_id}/access_tokens":
            self._json(404, {"message": "Not Found"})
            return
        problem = self._check_jwt(state)
        if problem is not None:
            self._json(401, {"message": problem})
            return
        token = f"ghs_fake{len(state.minted) + 1}{next(_SERIAL):04d}ABCDEFGHIJKLMNOP"
        state.minted.append(token)
        state.on_mint(token)
        if state.answer_with is not None:
            self._send(201, state.answer_with)
            return
        expires = datetime.fromtimestamp(state.clock() + state.token_lifetime, UTC)
        self._json(201, {"token": token, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})

    def _check_jwt(self, state: FakeGitHubState) -> str | None:
        """What GitHub would object to in the request's JWT, or None when it is good."""
        scheme, _, jwt = self.headers.get("Authorization", "").partition(" ")
        parts = jwt.split(".")
        if scheme != "Bearer" or len(parts) != 3:
            return "A JSON web token could not be decoded"
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            state.public_key.verify(
                _unb64(parts[2]),
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature):
            return "A JSON web token could not be decoded"
        if header.get("alg") != "RS256":
            return "A JSON web token could not be decoded"
        state.claims.append(claims)
        now = state.clock()
        if claims.get("iss") != state.app_id:
            return "Integration not found"
        if not claims["iat"] <= now < claims["exp"]:
            return "'Expiration time' claim ('exp') must be a numeric value in the future"
        if claims["exp"] - claims["iat"] > 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        return None

    def _json(self, code: int, body: dict[str, Any]) -> None:
        self._send(code, json.dumps(body).encode(), content_type="application/json")

    def _send(
        self, code: int, body: bytes, *, location: str = "", content_type: str = "text/plain"
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


_SERIAL = itertools.count()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGitHubApi:
    """A FAKE GitHub REST API: only ``POST /app/installations/{id}/access_tokens``.

    It is a fake because GitHub cannot exist here: the tests have no network and must not mint
    real tokens. It checks what GitHub checks before minting: a Bearer JWT whose RS256 signature
    verifies with the app's public key, ``iss`` equal to the app ID, ``iat`` ≤ now < ``exp``
    (``now`` from the test's clock) and a lifetime of at most ten minutes. It then answers
    ``201 {"token": …, "expires_at": RFC 3339}`` and reports the token through ``on_mint`` (so
    the test's git host can accept it); anything wrong is a 401 with GitHub's kind of message.
    """

    def __init__(self, state: FakeGitHubState) -> None:
        self.state = state
        self._server = _FakeGitHubServer(("127.0.0.1", 0), _FakeGitHubHandler)
        self._server.state = state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[FakeGitHubApi]:
        with serving(self._server):
            yield self
