"""Loopback servers for the sources security tests, all real sockets on 127.0.0.1:

- ``Listener``: an attacker's host. Answers every request with 401 and a Basic challenge (so a
  git holding credentials would send them) and records every byte and every Authorization.
- ``PrivateGitHost``: a private repository over git's smart HTTP (``git http-backend``) for one
  username and password; it can redirect elsewhere, before or after checking them.
- ``SilentHost``: accepts connections and never answers, counting those open right now.
"""

from __future__ import annotations

import base64
import binascii
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.gitserver import backend_path


def basic_credentials(header: str) -> str:
    """``user:password`` of a Basic Authorization header ('' when it is something else)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        return base64.b64decode(encoded).decode(errors="replace")
    except (binascii.Error, ValueError):
        return ""


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class Listener:
    """Records what reaches it; never serves a repository."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.authorizations: list[str] = []
        listener = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                self._record()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                listener.raw.append(self.rfile.read(length) if length else b"")
                self._record()

            def _record(self) -> None:
                listener.raw.append(f"{self.requestline}\n{self.headers}".encode())
                if self.headers.get("Authorization"):
                    listener.authorizations.append(
                        basic_credentials(self.headers["Authorization"])
                        or self.headers["Authorization"]
                    )
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def received(self) -> bytes:
        return b"\n".join(self.raw)

    @contextmanager
    def running(self) -> Iterator[Listener]:
        with serving(self._server):
            yield self


class PrivateGitHost:
    """``<base>/repo.git`` served by ``git http-backend`` to ``username:password`` only.

    ``redirect_to`` (a base URL) sends every request there instead: ``before_auth`` decides
    whether the credentials are checked first.
    """

    def __init__(self, bare: Path, username: str, password: str) -> None:
        self.root = bare.parent
        self.expected = f"{username}:{password}"
        self.redirect_to = ""
        self.before_auth = False
        self.authorizations: list[str] = []
        host = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                presented = basic_credentials(self.headers.get("Authorization", ""))
                if presented:
                    host.authorizations.append(presented)
                if host.redirect_to and host.before_auth:
                    return self._redirect()
                if presented != host.expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if host.redirect_to:
                    return self._redirect()
                return self._cgi()

            def _redirect(self) -> None:
                self.send_response(302)
                self.send_header("Location", host.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _cgi(self) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "GIT_PROJECT_ROOT": str(host.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": "tester",
                    "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                }
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                result = subprocess.run(
                    [backend_path()], input=body, env=env, capture_output=True, check=False
                )
                head, _, payload = result.stdout.partition(b"\r\n\r\n")
                status, headers = 200, []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/repo.git"

    @contextmanager
    def running(self) -> Iterator[PrivateGitHost]:
        with serving(self._server):
            yield self


class SilentHost:
    """Accepts TCP connections and never answers; ``open`` counts those not yet closed."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        self._stopped = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def open(self) -> int:
        """Connections whose client has not hung up (what it sent is read and dropped)."""
        with self._lock:
            self._connections = [c for c in self._connections if _still_open(c)]
            return len(self._connections)

    def _accept(self) -> None:
        self._socket.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
                self.accepted += 1

    @contextmanager
    def running(self) -> Iterator[SilentHost]:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stopped.set()
            thread.join()
            with self._lock:
                for connection in self._connections:
                    connection.close()
            self._socket.close()


def _still_open(connection: socket.socket) -> bool:
    connection.setblocking(False)
    try:
        while connection.recv(65536):
            pass
    except BlockingIOError:
        return True
    except OSError:
        pass
    connection.close()
    return False
