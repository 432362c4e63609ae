"""A Git smart-HTTP server on loopback for the benchmarks: ``git http-backend`` behind Python's
threading HTTP server, serving every repository under one directory.

Why: Flux's source-controller only accepts ``http(s)://`` and ``ssh://`` URLs (its GitRepository
schema refuses ``file://`` and local paths, and go-git speaks smart HTTP only, not the dumb
protocol), and Tether should fetch from the same URL in the same way when the two are compared.

Run as a process of its own (so its CPU is not counted against the benchmark's own process):
``python -m bench.gitserver --root DIR --port PORT``; repositories are then
``http://127.0.0.1:PORT/<name>`` for each ``DIR/<name>`` (a normal or bare repository).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

BACKEND = "/usr/lib/git-core/git-http-backend"


def backend_path() -> str:
    """``git http-backend`` lives in git's exec path, not on PATH."""
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return str(Path(exec_path) / "git-http-backend")


class GitHandler(BaseHTTPRequestHandler):
    """Hands each request to ``git http-backend`` as CGI and relays its answer."""

    root = Path()
    backend = BACKEND

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else self._chunked_body()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        result = subprocess.run(
            [self.backend], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = result.stdout.partition(b"\n\n")
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

    def _chunked_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return b""
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()


def start(root: Path, port: int) -> subprocess.Popen[bytes]:
    """The server as a child process, once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.gitserver", "--root", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the git HTTP server on 127.0.0.1:{port} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    GitHandler.root = args.root.resolve()
    GitHandler.backend = backend_path()
    ThreadingHTTPServer(("127.0.0.1", args.port), GitHandler).serve_forever()


if __name__ == "__main__":
    main()
