"""How requests to the API server authenticate: bearer tokens (inline, or a token file re-read on
every request), basic auth, client certificates, and kubeconfig ``exec`` credential plugins.

An exec plugin (``client.authentication.k8s.io/v1`` or ``v1beta1`` ``ExecCredential``) is run the
way kubectl runs it, with three rules that matter for a long-running async process:

- it runs in a worker thread, never on the event loop, and at most once at a time per kubeconfig
  user: requests that arrive while it runs wait for its result instead of starting their own;
- its credential is kept until ``status.expirationTimestamp`` minus a small safety margin, or,
  without an expiry, until the API server rejects it;
- when the API server answers 401, the plugin runs once more and the request is retried once.

Errors name the kubeconfig user and the command; the credential itself (stdout of the plugin)
never appears in an error.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tether.errors import ClusterError

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
# A credential is renewed this long before it expires, so a request is not sent with a token
# that expires on its way to the API server (or on a server whose clock is slightly ahead).
EXPIRY_MARGIN = timedelta(seconds=10)
_PLUGIN_TIMEOUT = 60.0
_STDERR_TAIL = 400


@dataclass(frozen=True)
class ExecSpec:
    """A kubeconfig user's ``exec`` section, validated, with the command path resolved."""

    user: str
    kubeconfig: Path
    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold secrets
    install_hint: str = ""
    interactive_mode: str = "IfAvailable"
    # What ``provideClusterInfo: true`` hands to the plugin (``spec.cluster``); None otherwise.
    cluster: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def who(self) -> str:
        """How errors name this plugin: the user entry, its file and the command."""
        return f"kubeconfig user {self.user!r} ({self.kubeconfig}): exec plugin {self.command!r}"


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin returned: a token and/or a client certificate, and when they expire."""

    token: str | None = field(default=None, repr=False)
    client_cert: bytes | None = field(default=None, repr=False)
    client_key: bytes | None = field(default=None, repr=False)
    expires: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.expires is None or now < self.expires - EXPIRY_MARGIN


class ExecPlugin:
    """One kubeconfig user's exec plugin and the credential it last returned."""

    def __init__(self, spec: ExecSpec) -> None:
        self.spec = spec
        self._credential: ExecCredential | None = None
        self._run_lock = threading.Lock()
        self._tls_lock = threading.Lock()
        self._tls_contexts: weakref.WeakSet[ssl.SSLContext] = weakref.WeakSet()

    def credential(self) -> ExecCredential:
        """The cached credential, or a new one (runs the plugin in this thread: sync callers)."""
        cached = self._credential
        if cached is not None and cached.usable_at(datetime.now(UTC)):
            return cached
        return self._replace(cached)

    async def credential_async(self) -> ExecCredential:
        """The cached credential, or a new one from the plugin run in a worker thread."""
        cached = self._credential
        if cached is not None and cached.usable_at(datetime.now(UTC)):
            return cached
        return await asyncio.to_thread(self._replace, cached)

    def renew(self, rejected: ExecCredential) -> ExecCredential:
        """A credential other than ``rejected`` (which the API server answered 401 to)."""
        return self._replace(rejected)

    async def renew_async(self, rejected: ExecCredential) -> ExecCredential:
        return await asyncio.to_thread(self._replace, rejected)

    def use_client_certificate_in(self, context: ssl.SSLContext) -> None:
        """Load the plugin's client certificate into ``context``, now and after every renewal."""
        with self._tls_lock:
            self._tls_contexts.add(context)
            credential = self._credential
        if credential is not None:
            _load_client_certificate(context, credential, self.spec)

    def _replace(self, seen: ExecCredential | None) -> ExecCredential:
        """Run the plugin, unless another caller replaced ``seen`` while this one waited."""
        with self._run_lock:
            current = self._credential
            if current is not None and current is not seen:
                return current
            credential = run_plugin(self.spec)
            with self._tls_lock:
                contexts = list(self._tls_contexts)
            for context in contexts:
                _load_client_certificate(context, credential, self.spec)
            self._credential = credential  # only once its certificate loaded
            return credential


def _load_client_certificate(
    context: ssl.SSLContext, credential: ExecCredential, spec: ExecSpec
) -> None:
    """New TLS connections present the plugin's certificate (the ssl module reads files only,
    so the PEM pair lives in a private directory just long enough to be loaded)."""
    if not (credential.client_cert and credential.client_key):
        return
    with tempfile.TemporaryDirectory(prefix="tether-exec-") as directory:
        cert, key = Path(directory) / "client.crt", Path(directory) / "client.key"
        cert.write_bytes(credential.client_cert)
        key.touch(mode=0o600)
        key.write_bytes(credential.client_key)
        try:
            context.load_cert_chain(str(cert), str(key))
        except ssl.SSLError as error:
            raise ClusterError(
                f"{spec.who}: returned a client certificate and key that do not load as a PEM "
                f"pair ({error.reason or 'invalid'})"
            ) from error


# -- running a plugin -----------------------------------------------------------------------


def run_plugin(spec: ExecSpec) -> ExecCredential:
    """Run the plugin once and parse what it printed (blocking)."""
    interactive = _interactive(spec)
    exec_info = {
        "apiVersion": spec.api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": interactive, **({"cluster": spec.cluster} if spec.cluster else {})},
    }
    env = {**os.environ, **dict(spec.env), "KUBERNETES_EXEC_INFO": json.dumps(exec_info)}
    try:
        result = subprocess.run(
            [spec.command, *spec.args],
            env=env,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None if interactive else subprocess.PIPE,  # prompts go to the terminal
            text=True,
            timeout=None if interactive else _PLUGIN_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as error:
        hint = f"\n{spec.install_hint.strip()}" if spec.install_hint.strip() else ""
        raise ClusterError(f"{spec.who}: command not found{hint}") from error
    except subprocess.TimeoutExpired as error:
        raise ClusterError(
            f"{spec.who}: no answer within {_PLUGIN_TIMEOUT:.0f}s; run it by hand to see why"
        ) from error
    except OSError as error:
        raise ClusterError(f"{spec.who}: cannot run it ({error.strerror})") from error
    if result.returncode != 0:
        raise ClusterError(
            f"{spec.who}: failed with exit code {result.returncode}"
            f"{_stderr_tail(result.stderr)}; run it by hand to see why"
        )
    return parse_exec_credential(result.stdout, spec)


def _interactive(spec: ExecSpec) -> bool:
    terminal = sys.stdin is not None and sys.stdin.isatty()
    if spec.interactive_mode == "Always" and not terminal:
        raise ClusterError(
            f"{spec.who}: needs a terminal (interactiveMode: Always) but there is none; log in "
            "once in a terminal, or use a non-interactive credential for automation"
        )
    return spec.interactive_mode != "Never" and terminal


def _stderr_tail(stderr: str | None) -> str:
    text = (stderr or "").strip()
    if not text:
        return ""
    tail = text[-_STDERR_TAIL:]
    return f" (its stderr: {'…' if len(text) > len(tail) else ''}{tail})"


def parse_exec_credential(stdout: str, spec: ExecSpec) -> ExecCredential:
    """The ``ExecCredential`` a plugin printed; what is wrong with it otherwise (never echoing
    the output, which may hold a credential)."""
    try:
        data = json.loads(stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("kind") != "ExecCredential":
        raise ClusterError(f"{spec.who}: did not print an ExecCredential JSON object")
    if data.get("apiVersion") != spec.api_version:
        raise ClusterError(
            f"{spec.who}: printed an ExecCredential of apiVersion {data.get('apiVersion')!r}, "
            f"but the kubeconfig asks for {spec.api_version!r}"
        )
    status = data.get("status")
    if not isinstance(status, dict):
        raise ClusterError(f"{spec.who}: printed an ExecCredential without a status")
    token = _optional_string(status, "token", spec)
    cert = _optional_string(status, "clientCertificateData", spec)
    key = _optional_string(status, "clientKeyData", spec)
    if bool(cert) != bool(key):
        raise ClusterError(
            f"{spec.who}: returned clientCertificateData and clientKeyData must come together"
        )
    if not token and not cert:
        raise ClusterError(f"{spec.who}: returned neither a token nor a client certificate")
    return ExecCredential(
        token=token or None,
        client_cert=cert.encode() if cert else None,
        client_key=key.encode() if key else None,
        expires=_expiry(status.get("expirationTimestamp"), spec),
    )


def _optional_string(status: dict[str, Any], key: str, spec: ExecSpec) -> str:
    value = status.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ClusterError(f"{spec.who}: status.{key} is not a string")
    return value


def _expiry(value: Any, spec: ExecSpec) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        expires = datetime.fromisoformat(str(value))
    except ValueError as error:
        raise ClusterError(
            f"{spec.who}: status.expirationTimestamp {value!r} is not an RFC 3339 time"
        ) from error
    return expires if expires.tzinfo else expires.replace(tzinfo=UTC)


# -- what a request carries -------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: at most one of token, token_file, basic, exec_plugin; plus a client
    certificate (from files, or returned by the exec plugin)."""

    client_cert: Path | None = None
    client_key: Path | None = None
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    basic: tuple[str, str] | None = field(default=None, repr=False)
    exec_plugin: ExecPlugin | None = None

    def bearer_token(self) -> str | None:
        """The current bearer token (blocking: the exec plugin may run)."""
        if self.exec_plugin is not None:
            return self.exec_plugin.credential().token
        return self._static_token()

    def authorization(self, exec_credential: ExecCredential | None = None) -> str | None:
        """The ``Authorization`` header value, given what the exec plugin returned (if any)."""
        token = exec_credential.token if exec_credential is not None else self._static_token()
        if token:
            return f"Bearer {token}"
        if self.basic:
            user, password = self.basic
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return None

    def _static_token(self) -> str | None:
        if self.token_file is None:
            return self.token
        try:
            return self.token_file.read_text().strip()
        except OSError as error:
            raise ClusterError(
                f"cannot read the bearer token file {self.token_file} ({error.strerror}); check "
                "the kubeconfig user's tokenFile or the mounted service account token"
            ) from error


class KubeAuth(httpx.Auth):
    """Sets ``Authorization`` on every request (sync or async client); with an exec plugin, a
    401 renews the credential once and retries."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()  # a retry after 401 sends the same body again
        plugin = self._credentials.exec_plugin
        used = plugin.credential() if plugin is not None else None
        response = yield self._authorized(request, used)
        if response.status_code == 401 and plugin is not None and used is not None:
            yield self._authorized(request, plugin.renew(used))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()  # a retry after 401 sends the same body again
        plugin = self._credentials.exec_plugin
        used = await plugin.credential_async() if plugin is not None else None
        response = yield self._authorized(request, used)
        if response.status_code == 401 and plugin is not None and used is not None:
            yield self._authorized(request, await plugin.renew_async(used))

    def _authorized(
        self, request: httpx.Request, exec_credential: ExecCredential | None
    ) -> httpx.Request:
        header = self._credentials.authorization(exec_credential)
        if header:
            request.headers["Authorization"] = header
        return request
