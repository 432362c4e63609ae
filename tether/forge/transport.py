"""HTTP to a forge: token auth per request, bounded timeouts, retries with backoff, and the
mapping of failures to ``ForgeError`` / ``ForgeUnreachable``.

Retry policy, in one place:

- a request that never reached the forge (connection refused, connect timeout) is retried,
  whatever its method;
- a 5xx answer, a read timeout or a dropped connection is retried for reads (GET) and for
  writes the caller marks ``repeatable`` (setting a commit status); other writes are not
  repeated blindly, because the forge may have done them; their callers make the whole
  operation idempotent instead (look first, then write);
- when retries run out, ``ForgeUnreachable`` says the forge did not answer usefully.

Each attempt has a total deadline (``ForgeSettings.attempt_timeout``), so a forge that accepts
the connection and then trickles or stalls cannot hold a caller longer than
``attempts * attempt_timeout`` plus the backoff pauses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tether.errors import ForgeError, ForgeUnreachable
from tether.forge.interface import TokenProvider


@dataclass(frozen=True)
class ForgeSettings:
    """How patiently a driver talks to its forge."""

    attempt_timeout: float = 15.0
    """Seconds one attempt may take from connect to the last byte of the answer."""
    attempts: int = 4
    """How many times a retryable request is tried in all."""
    backoff: float = 0.5
    """Seconds before the second attempt; doubled for each further one."""
    max_backoff: float = 8.0
    settle_seconds: float = 30.0
    """How long to keep looking for what was just pushed or created before giving up (forges
    index pushes in the background)."""


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
_MESSAGE_LIMIT = 300


class _TokenAuth(httpx.Auth):
    """``Authorization: token …``, asked from the provider for every request."""

    def __init__(self, credentials: TokenProvider) -> None:
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        _, token = self._credentials.current()
        request.headers["Authorization"] = f"token {token}"
        yield request


def plain_base_url(url: str) -> str:
    """``url`` without a trailing slash; refuses credentials written into it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForgeError(
            f"forge URL {url!r} is not an http(s) URL; write it as https://host[/path]"
        )
    if parts.username or parts.password:
        masked = urlunsplit(parts._replace(netloc=f"***@{parts.netloc.rpartition('@')[2]}"))
        raise ForgeError(
            f"forge URL {masked} holds credentials; remove them and give the token through a "
            "token file instead"
        )
    return urlunsplit(parts._replace(path=parts.path.rstrip("/"), query="", fragment=""))


class ForgeHttp:
    """One connection pool to one forge's API."""

    def __init__(
        self,
        base_url: str,
        api_prefix: str,
        credentials: TokenProvider,
        settings: ForgeSettings | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = plain_base_url(base_url)
        self.settings = settings or ForgeSettings()
        self._credentials = credentials
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url + api_prefix,
            auth=_TokenAuth(credentials),
            timeout=self.settings.attempt_timeout,
            headers={"User-Agent": "tether/0.1", "Accept": "application/json"},
            follow_redirects=False,
        )

    async def close(self) -> None:
        await self._http.aclose()

    def url_of(self, path: str) -> str:
        return str(self._http.base_url).rstrip("/") + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Any = None,
        params: dict[str, str | int] | None = None,
        repeatable: bool | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """The decoded JSON answer of one API call (None for an empty answer, or a 404 when
        ``missing_ok``). ``what`` says what the call does, for error messages. ``repeatable``
        defaults to True for GET only (see the module docstring)."""
        url = self.url_of(path)
        repeat = method == "GET" if repeatable is None else repeatable
        last_failure, last_status = "", None
        for attempt in range(self.settings.attempts):
            if attempt:
                pause = min(self.settings.backoff * 2 ** (attempt - 1), self.settings.max_backoff)
                await self._sleep(pause)
            try:
                async with asyncio.timeout(self.settings.attempt_timeout):
                    response = await self._http.request(
                        method,
                        path,
                        params=params,
                        content=None if body is None else json.dumps(body).encode(),
                        headers={"Content-Type": "application/json"} if body is not None else None,
                    )
            except (httpx.TransportError, TimeoutError) as error:
                last_failure = _describe_transport_failure(error, self.settings.attempt_timeout)
                last_status = None
                if isinstance(error, _NOT_SENT) or repeat:
                    continue
                raise self._unreachable(what, url, last_failure, attempt + 1) from error
            if response.status_code >= 500:
                last_failure = f"HTTP {response.status_code}: {self._message_of(response)}"
                last_status = response.status_code
                if repeat:
                    continue
                raise self._unreachable(what, url, last_failure, attempt + 1, response.status_code)
            if response.status_code == 404 and missing_ok:
                return None
            if response.status_code >= 300:
                raise self._refused(what, method, url, response)
            return self._decoded(what, url, response)
        raise self._unreachable(what, url, last_failure, self.settings.attempts, last_status)

    def _unreachable(
        self, what: str, url: str, failure: str, tries: int, status: int | None = None
    ) -> ForgeUnreachable:
        tried = "once" if tries == 1 else f"{tries} times"
        return ForgeUnreachable(
            f"{what}: the forge at {self.base_url} did not answer usefully ({failure}; tried "
            f"{tried}, {url}); check that it is up and reachable from here. Nothing is known "
            "to have changed: the action can be retried later",
            url=url,
            status=status,
        )

    def _decoded(self, what: str, url: str, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise ForgeError(
                f"{what}: {url} answered HTTP {response.status_code} with something that is not "
                "JSON; check the forge URL points at the forge itself, not a proxy's login page",
                url=url,
                status=response.status_code,
            ) from error

    def _refused(self, what: str, method: str, url: str, response: httpx.Response) -> ForgeError:
        status = response.status_code
        message = self._message_of(response)
        if status < 400:
            location = response.headers.get("Location", "?")
            return ForgeError(
                f"{what}: {method} {url} was redirected (HTTP {status}) to {location}; give "
                "the forge's final address as its URL",
                url=url,
                status=status,
            )
        if status == 401:
            hint = "the token was refused: check the token file holds a valid, unexpired token"
        elif status == 403:
            hint = "the token lacks permission: it needs write access to the repository"
        elif status == 404:
            hint = "check the repository owner/name, the branch or the number"
        else:
            hint = "fix the request as the forge says"
        return ForgeError(
            f"{what}: {method} {url} was refused with HTTP {status}: {message}; {hint}",
            url=url,
            status=status,
        )

    def _message_of(self, response: httpx.Response) -> str:
        """The forge's own explanation, short, with the token masked should it echo it."""
        try:
            data = response.json()
            text = str(data.get("message") or data) if isinstance(data, dict) else str(data)
        except ValueError:
            text = response.text
        text = " ".join(text.split())[:_MESSAGE_LIMIT] or response.reason_phrase
        try:
            _, token = self._credentials.current()
        except Exception:  # the provider's own error is not this message's concern
            return text
        return text.replace(token, "***") if token else text


def _describe_transport_failure(error: Exception, timeout: float) -> str:
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return f"no complete answer within {timeout:g}s"
    if isinstance(error, httpx.ConnectError):
        return "connection refused or host unreachable"
    return f"connection failed: {type(error).__name__}"
