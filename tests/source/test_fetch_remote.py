"""fetch() over the network: git's dumb HTTP protocol with basic auth, and unreachable remotes.

The HTTP server is Python's own, serving a bare repository's files from a thread on 127.0.0.1;
git talks to it exactly as it would to any dumb-HTTP host (after ``git update-server-info``).
"""

from __future__ import annotations

import base64
import functools
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.source.gitrepo import Origin, git
from tether.errors import SourceError
from tether.source import fetch

PASSWORD = "s3cret-token"


class _AuthHandler(SimpleHTTPRequestHandler):
    """Serves files only to ``alice`` with PASSWORD, like a private git host."""

    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def served(origin: Origin, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(base URL, bare repo)``: the origin pushed to a bare repo served over dumb HTTP."""
    root = tmp_path / "www"
    root.mkdir()
    bare = origin.bare_clone(root / "repo.git")
    git(bare, "update-server-info")
    handler = functools.partial(_AuthHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", bare
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def everything_in(directory: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in directory.rglob("*") if p.is_file() and not p.is_symlink()
    )


def test_dumb_http_with_basic_auth(served: tuple[str, Path], origin: Origin, cache: Path) -> None:
    host, _ = served
    artifact = fetch(f"http://alice:{PASSWORD}@{host}/repo.git", cache_dir=cache)
    revision = artifact.revision
    assert revision.url == f"http://alice:***@{host}/repo.git"
    assert (revision.ref, revision.commit) == ("main", origin.head())
    assert (artifact.root / "app" / "link.yaml").is_symlink()
    assert PASSWORD not in str(revision.to_dict())
    assert PASSWORD.encode() not in everything_in(cache / "repos")


def test_dumb_http_sees_pushed_commits(
    served: tuple[str, Path], origin: Origin, cache: Path
) -> None:
    host, bare = served
    url = f"http://alice:{PASSWORD}@{host}/repo.git"
    fetch(url, "main", cache_dir=cache)
    new = origin.commit({"new.yaml": "kind: ConfigMap\n"}, message="over http")
    origin.git("push", "--quiet", str(bare), "main")
    git(bare, "update-server-info")
    artifact = fetch(url, "main", cache_dir=cache)
    assert artifact.revision.commit == new
    assert (artifact.root / "new.yaml").read_text() == "kind: ConfigMap\n"


def test_wrong_password_is_reported_without_either_password(
    served: tuple[str, Path], cache: Path
) -> None:
    host, _ = served
    with pytest.raises(SourceError) as caught:
        fetch(f"http://alice:wrong-{PASSWORD}@{host}/repo.git", "main", cache_dir=cache)
    message = str(caught.value)
    assert message.startswith(f"cannot reach http://alice:***@{host}/repo.git (ref main): ")
    assert "Authentication failed" in message
    assert "check the URL, network and credentials" in message
    assert PASSWORD not in message


def test_missing_credentials_do_not_prompt(served: tuple[str, Path], cache: Path) -> None:
    host, _ = served
    with pytest.raises(SourceError, match="Authentication failed"):
        fetch(f"http://{host}/repo.git", "main", cache_dir=cache)


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{PASSWORD}@127.0.0.1:9/none.git",
        f"https://{PASSWORD}@127.0.0.1:9/none.git",
        "ssh://git@127.0.0.1:9/none.git",
        f"ssh://git:{PASSWORD}@127.0.0.1:9/none.git",
    ],
)
@pytest.mark.parametrize("ref", ["main", None])
def test_unreachable_remote(url: str, ref: str | None, cache: Path) -> None:
    with pytest.raises(SourceError) as caught:
        fetch(url, ref, cache_dir=cache, timeout=30)
    message = str(caught.value)
    assert message.startswith("cannot reach ")
    assert f"127.0.0.1:9/none.git (ref {ref or 'HEAD'}): " in message
    assert "check the URL, network and credentials" in message
    assert PASSWORD not in message


def test_silent_server_times_out(cache: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        url = f"http://bob:{PASSWORD}@127.0.0.1:{port}/slow.git"
        with pytest.raises(SourceError) as caught:
            fetch(url, "main", cache_dir=cache, timeout=1.0)
    message = str(caught.value)
    assert message.startswith(f"timed out fetching http://bob:***@127.0.0.1:{port}/slow.git")
    assert "raise the timeout" in message
    assert PASSWORD not in message
