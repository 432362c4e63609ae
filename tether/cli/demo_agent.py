"""What ``tether demo`` drives and watches: the agent as a background process, its webhook, and
the cluster seen through the API (an App's revision, a hand edit and its undoing, Events).

Every wait here is bounded and, when it runs out, raises :class:`DemoError` naming what it was
waiting for and what it saw last. Nothing here prints: ``demo.py`` tells the story.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tether.agent import crds
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection
from tether.errors import TetherError

T = TypeVar("T")
POLL_SECONDS = 0.05
AGENT_START_TIMEOUT = 30.0
AGENT_STOP_TIMEOUT = 20.0


class DemoError(TetherError):
    """A step of the demo did not happen in time, or the agent went away."""


async def poll(
    check: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str,
    guard: Callable[[], None] = lambda: None,
    explain: Callable[[], Awaitable[str]] | None = None,
) -> T:
    """``check()`` until it returns something other than None, at most ``timeout`` seconds.

    ``guard`` runs before every try and raises when waiting longer is pointless; ``explain``
    says what was seen last, for the error when time runs out.
    """
    deadline = time.monotonic() + timeout
    while True:
        guard()
        value = await check()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            seen = f"; {await explain()}" if explain else ""
            raise DemoError(f"timed out after {timeout:g}s waiting for {what}{seen}")
        await asyncio.sleep(POLL_SECONDS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BackgroundAgent:
    """``tether agent`` as a real process, watching one namespace, logging to a file."""

    def __init__(self, kubeconfig: Path, namespace: str, workdir: Path, identity: str) -> None:
        self.port = _free_port()
        self.log_path = workdir / "agent.log"
        self.secret_path = workdir / "webhook-secret"
        self.argv = [
            "agent",
            f"--namespace={namespace}",
            f"--lease-namespace={namespace}",
            f"--identity={identity}",
            f"--listen=127.0.0.1:{self.port}",
            f"--webhook-secret-file={self.secret_path}",
            "--allow-local-sources",  # the demo's repository is a directory on this machine
            f"--kubeconfig={kubeconfig}",
        ]
        self._audit_db = workdir / "audit.db"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid if self._process else 0

    def start(self) -> None:
        """Write a fresh webhook secret (never shown), start the agent, wait for /healthz."""
        self.secret_path.write_bytes(b"")
        self.secret_path.chmod(0o600)
        self.secret_path.write_text(secrets.token_hex(32))
        env = {**os.environ, "TETHER_DB": str(self._audit_db)}
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tether.cli.main", *self.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        asyncio.run(
            poll(self._serving, AGENT_START_TIMEOUT, "the agent to serve /healthz", self.check)
        )

    async def _serving(self) -> bool | None:
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                response = await client.get(f"{self.url}/healthz")
        except httpx.HTTPError:
            return None
        return True if response.status_code == 200 else None

    def check(self) -> None:
        """Raise when the agent has exited: there is no point waiting for it then."""
        if self._process is None or self._process.poll() is None:
            return
        raise DemoError(
            f"the agent exited with code {self._process.returncode}; its log: {self.log_path}"
        )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int:
        """SIGTERM and wait (bounded) for a clean exit; SIGKILL and fail if it does not come."""
        process = self._process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(AGENT_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise DemoError(
                    f"the agent (pid {process.pid}) did not stop within {AGENT_STOP_TIMEOUT:g}s "
                    f"of SIGTERM and was killed; its log: {self.log_path}"
                ) from None
        return process.returncode

    def push_webhook(self, repository_url: str, commit: str, branch: str) -> list[str]:
        """Announce a push the way GitHub does (HMAC-signed); the GitSources the agent matched."""
        body = json.dumps(
            {
                "ref": f"refs/heads/{branch}",
                "after": commit,
                "repository": {"clone_url": repository_url},
            }
        ).encode()
        signature = hmac.new(self.secret_path.read_bytes().strip(), body, hashlib.sha256)
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": f"sha256={signature.hexdigest()}",
        }
        try:
            response = httpx.post(f"{self.url}/hooks/github", content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DemoError(f"could not send the push webhook to {self.url}: {error}") from error
        if response.status_code != 202:
            raise DemoError(
                f"the agent refused the push webhook at {self.url}/hooks/github "
                f"({response.status_code}): {response.text[:300]}"
            )
        return list(response.json().get("sources", []))


@dataclass(frozen=True)
class HandEdit:
    """A hand edit seen through a watch: the value it set, the value that came back, and when."""

    edited_to: int
    restored_to: int
    seconds: float


class ClusterView:
    """What the demo reads from the API server, each wait bounded by a timeout."""

    def __init__(self, connection: Connection, guard: Callable[[], None]) -> None:
        self.connection = connection
        self.guard = guard

    def wait_for_revision(
        self, namespace: str, name: str, commit: str, timeout: float, started: float
    ) -> float:
        """Seconds from ``started`` (monotonic) until the App's lastAppliedRevision is ``commit``."""

        async def applied(client: KubeClient) -> float:
            apps = await client.resource(crds.API_VERSION, "App")

            async def check() -> float | None:
                app = await client.get(apps, namespace, name) or {}
                if (app.get("status") or {}).get("lastAppliedRevision") == commit:
                    return time.monotonic() - started
                return None

            async def explain() -> str:
                return _app_summary(await client.get(apps, namespace, name) or {})

            what = f"App {namespace}/{name} to report lastAppliedRevision {commit[:12]}"
            return await poll(check, timeout, what, self.guard, explain)

        return asyncio.run(self._with_client(applied))

    def wait_until_idle(self, namespace: str, name: str, quiet: float, timeout: float) -> None:
        """Until no pass of the agent is running on the App: Reconciling is False and the App
        has not changed for ``quiet`` seconds. (An edit made during a pass is settled by the
        next pass without being reported as drift.)"""

        async def idle(client: KubeClient) -> None:
            apps = await client.resource(crds.API_VERSION, "App")
            last: tuple[str, float] = ("", 0.0)

            async def check() -> bool | None:
                nonlocal last
                app = await client.get(apps, namespace, name) or {}
                version = str(app.get("metadata", {}).get("resourceVersion", ""))
                if _condition(app, "Reconciling").get("status") != "False":
                    version = ""
                if version != last[0]:
                    last = (version, time.monotonic())
                return True if version and time.monotonic() - last[1] >= quiet else None

            async def explain() -> str:
                return _app_summary(await client.get(apps, namespace, name) or {})

            what = (
                f"App {namespace}/{name} to be idle (Reconciling=False, unchanged for {quiet:g}s)"
            )
            await poll(check, timeout, what, self.guard, explain)

        asyncio.run(self._with_client(idle))

    def hand_edit(
        self, edit: list[str], namespace: str, deployment: str, replicas: int, timeout: float
    ) -> tuple[str, HandEdit]:
        """Run ``edit`` (a kubectl command setting ``replicas``) and watch the Deployment until
        its replicas are back where they were: kubectl's output and what the watch saw."""

        async def edit_and_watch(client: KubeClient) -> tuple[str, HandEdit]:
            resource = await client.resource("apps/v1", "Deployment")
            live = await client.get(resource, namespace, deployment)
            if live is None:
                raise DemoError(f"Deployment {namespace}/{deployment} is missing before the edit")
            before = int(live["spec"]["replicas"])
            version = str(live["metadata"]["resourceVersion"])
            watching = asyncio.create_task(
                _replicas_round_trip(
                    client, resource, namespace, deployment, version, replicas, before
                )
            )
            try:
                async with asyncio.timeout(timeout):
                    printed = await _run(edit)
                    seconds = await watching
            except TimeoutError:
                raise DemoError(
                    f"timed out after {timeout:g}s waiting for the agent to put Deployment "
                    f"{namespace}/{deployment} back to {before} replicas after the hand edit "
                    f"to {replicas}"
                ) from None
            finally:
                watching.cancel()
            return printed, HandEdit(replicas, before, seconds)

        return asyncio.run(self._with_client(edit_and_watch))

    def wait_for_events(
        self, namespace: str, app: str, reasons: tuple[str, ...], since: datetime, timeout: float
    ) -> dict[str, int]:
        """How many Events of each reason the agent recorded on the App since ``since``, once
        every one of ``reasons`` is among them."""

        async def recorded(client: KubeClient) -> dict[str, int]:
            resource = await client.resource("v1", "Event")
            seen: dict[str, int] = {}

            async def check() -> dict[str, int] | None:
                data = await client.request(
                    "GET",
                    resource.path(namespace),
                    what=f"Events of App {namespace}/{app}",
                    params={"fieldSelector": f"involvedObject.kind=App,involvedObject.name={app}"},
                )
                seen.clear()
                for event in data.get("items", []):
                    if _created(event) >= since.replace(microsecond=0):
                        seen[event["reason"]] = seen.get(event["reason"], 0) + 1
                return dict(seen) if all(r in seen for r in reasons) else None

            async def explain() -> str:
                return f"seen so far: {', '.join(sorted(seen)) or 'none'}"

            what = f"the agent's Events {', '.join(reasons)} on App {namespace}/{app}"
            return await poll(check, timeout, what, self.guard, explain)

        return asyncio.run(self._with_client(recorded))

    async def _with_client(self, work: Callable[[KubeClient], Awaitable[T]]) -> T:
        async with KubeClient(self.connection) as client:
            return await work(client)


async def _replicas_round_trip(
    client: KubeClient,
    resource: Any,
    namespace: str,
    name: str,
    version: str,
    edited: int,
    restored: int,
) -> float:
    """Seconds between the watch seeing ``replicas == edited`` and then ``== restored``."""
    seen_edit: float | None = None
    async for event in client.watch(resource, namespace, version, timeout_seconds=120):
        if event.get("type") == "ERROR":
            raise DemoError(f"the watch on Deployment {namespace}/{name} failed: {event}")
        obj = event.get("object") or {}
        if event.get("type") != "MODIFIED" or obj.get("metadata", {}).get("name") != name:
            continue
        replicas = int(obj["spec"]["replicas"])
        if seen_edit is None and replicas == edited:
            seen_edit = time.monotonic()
        elif seen_edit is not None and replicas == restored:
            return time.monotonic() - seen_edit
    raise DemoError(f"the watch on Deployment {namespace}/{name} ended before the edit was undone")


async def _run(argv: list[str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    printed, _ = await process.communicate()
    text = printed.decode(errors="replace").strip()
    if process.returncode != 0:
        raise DemoError(f"{Path(argv[0]).name} exited with {process.returncode}: {text}")
    return text


def _created(event: dict[str, Any]) -> datetime:
    stamp = event.get("lastTimestamp") or event["metadata"]["creationTimestamp"]
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def _condition(app: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (app.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def _app_summary(app: dict[str, Any]) -> str:
    """The App's status in a line: revisions and its Ready condition's reason and message."""
    if not app:
        return "the App does not exist"
    status = app.get("status") or {}
    ready = _condition(app, "Ready")
    condition = (
        f"Ready={ready.get('status')} ({ready.get('reason')}: {ready.get('message', '')[:300]})"
        if ready
        else "no Ready condition yet (has the agent seen it?)"
    )
    return (
        f"last applied {str(status.get('lastAppliedRevision') or '-')[:12]}, "
        f"last attempted {str(status.get('lastAttemptedRevision') or '-')[:12]}, {condition}"
    )
