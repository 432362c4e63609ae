"""Real receivers for the alert tests: a recording HTTP server and Debian's Alertmanager.

:class:`Recorder` is a threaded ``http.server`` on 127.0.0.1 that keeps every request it gets and
answers from a script (status, body, headers, an optional delay), 200 once the script runs out.

:class:`Alertmanager` runs the real ``prometheus-alertmanager`` from Debian's package on a free
loopback port with clustering off, its storage in a temporary directory and a route to a receiver
that sends nothing. When the binary is missing the tests fail (never skip): ``scripts/setup``
installs the package.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
ALERTMANAGER_HINT = (
    "the Alertmanager tests need a real Alertmanager, but neither prometheus-alertmanager nor "
    "alertmanager is on PATH: scripts/setup installs Debian's package "
    "(`apt-get install -y prometheus-alertmanager`, binary /usr/bin/prometheus-alertmanager)"
)
ALERTMANAGER_CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo_target: bool = False  # answer with the request's path and query, as careless servers do


@dataclass(frozen=True)
class Received:
    method: str
    target: str  # path and query
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")


class Recorder:
    """An HTTP server on 127.0.0.1 that records requests and answers from a script."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            return self._script.popleft() if self._script else Reply()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                reply = recorder._next(
                    Received("POST", self.path, dict(self.headers.items()), body)
                )
                if reply.delay and recorder._stopping.wait(reply.delay):
                    return
                content = self.path.encode() if reply.echo_target else reply.body
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def alertmanager_binary() -> str:
    for name in ALERTMANAGER_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(ALERTMANAGER_HINT, pytrace=False)


@dataclass
class Alertmanager:
    """A running Alertmanager; ``url`` is its base URL."""

    binary: str
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.directory / "alertmanager.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def version(self) -> str:
        result = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, check=False
        )
        return (result.stdout or result.stderr).splitlines()[0]

    def start(self, attempts: int = 3) -> Alertmanager:
        config = self.directory / "alertmanager.yml"
        config.write_text(ALERTMANAGER_CONFIG)
        for _ in range(attempts):  # another process may take the free port first
            self.port = free_port()
            with (self.directory / "alertmanager.log").open("wb") as log:
                self.process = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={config}",
                        f"--storage.path={self.directory / 'data'}",
                        "--cluster.listen-address=",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready(timeout=30.0):
                return self
            self.stop()
        raise AssertionError(f"Alertmanager did not become ready:\n{self.log}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5.0)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result
