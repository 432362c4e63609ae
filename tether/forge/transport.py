"""HTTP to a forge: token auth per request, bounded timeouts, retries with backoff, and the
mapping of failures to ``ForgeError`` / ``ForgeUnreachable``.

Retry policy, in one place:

- a request that never reached the forge (connection refused, connect timeout) is retried,
  whatever its method;
- a 5xx answer, a read timeout or a dropped connection is retried for reads (GET) and for
  writes the caller marks ``repeatable`` (setting a commit status); other writes are not
  repeated blindly, because the forge may have done them; their callers make the whole
  operation idempotent instead (look first, then write);
- a rate-limited answer (429, or GitHub's 403 with ``Retry-After`` or an exhausted
  ``x-ratelimit-remaining``) was not acted on, so it is retried whatever its method, after the
  pause the forge asks for (``Retry-After``, else the reset time); a pause longer than
  ``max_rate_limit_wait`` is not waited for: ``ForgeUnreachable`` at once;
- when retries run out, ``ForgeUnreachable`` says the forge did not answer usefully.

Lists follow the forge's ``Link: <…>; rel="next"`` header (GitHub, GitLab and Gitea all send
it), only to the forge's own API address, so the token is never sent elsewhere.

Each attempt has a total deadline (``ForgeSettings.attempt_timeout``), so a forge that accepts
the connection and then trickles or stalls cannot hold a caller longer than
``attempts * attempt_timeout`` plus the backoff pauses.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Self
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
    max_rate_limit_wait: float = 60.0
    """The longest pause a rate-limited request waits for before it is retried; a forge that
    asks for more is reported as ``ForgeUnreachable`` at once (the caller retries later)."""


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
_MESSAGE_LIMIT = 300
_MAX_PAGES = 40
_RETRY_AFTER = "Retry-After"
_RATE_REMAINING = ("x-ratelimit-remaining", "ratelimit-remaining")
_RATE_RESET = ("x-ratelimit-reset", "ratelimit-reset")


class _TokenAuth(httpx.Auth):
    """``Authorization: <scheme> <token>``, asked from the provider for every request."""

    def __init__(self, credentials: TokenProvider, scheme: str) -> None:
        self._credentials = credentials
        self._scheme = scheme

    def __repr__(self) -> str:
        return f"_TokenAuth(scheme={self._scheme!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        _, token = self._credentials.current()
        request.headers["Authorization"] = f"{self._scheme} {token}"
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
    """One connection pool to one forge's API.

    ``auth_scheme`` is the word before the token in ``Authorization`` (Gitea: ``token``;
    GitHub and GitLab: ``Bearer``); ``headers`` are sent with every request (GitHub's API
    version, for one). ``clock`` gives the epoch seconds a rate limit's reset time is measured
    against."""

    def __init__(
        self,
        base_url: str,
        api_prefix: str,
        credentials: TokenProvider,
        settings: ForgeSettings | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        auth_scheme: str = "token",
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = plain_base_url(base_url)
        self.settings = settings or ForgeSettings()
        self._credentials = credentials
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=self.base_url + api_prefix,
            auth=_TokenAuth(credentials, auth_scheme),
            timeout=self.settings.attempt_timeout,
            headers={"User-Agent": "tether/0.1", "Accept": "application/json", **(headers or {})},
            follow_redirects=False,
        )

    async def close(self) -> None:
        await self._http.aclose()

    def url_of(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
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
        response = await self.exchange(
            method,
            path,
            what=what,
            body=body,
            params=params,
            repeatable=repeatable,
            missing_ok=missing_ok,
        )
        return None if response is None else self._decoded(what, self.url_of(path), response)

    async def pages(
        self,
        path: str,
        *,
        what: str,
        params: dict[str, str | int] | None = None,
        items: Callable[[Any], list[Any]] | None = None,
        max_pages: int = _MAX_PAGES,
    ) -> list[Any]:
        """Every item of a list the forge answers page by page, following its ``Link: <…>;
        rel="next"`` header (at most ``max_pages`` pages). ``items`` picks the list out of an
        answer that wraps it (GitHub's combined status); by default the answer is the list."""
        found: list[Any] = []
        target, query = path, params
        for _ in range(max_pages):
            response = await self.exchange("GET", target, what=what, params=query)
            assert response is not None  # missing_ok=False raised instead
            data = self._decoded(what, self.url_of(target), response)
            found += (items(data) if items is not None else data) or []
            following = response.links.get("next", {}).get("url")
            if not following:
                break
            target, query = self._own_link(what, str(following)), None
        return found

    def _own_link(self, what: str, link: str) -> str:
        """A next-page link, checked to point at this forge's API: the token goes nowhere else."""
        api = self._http.base_url
        target = httpx.URL(link)
        if (target.scheme, target.host, target.port) != (api.scheme, api.host, api.port) or not (
            target.path.startswith(api.path.rstrip("/") + "/")
        ):
            raise ForgeError(
                f"{what}: the forge at {self.base_url} links its next page to "
                f"{target.copy_with(query=None)}, outside its API at {api}; refused so the token "
                "is not sent there. Check the forge's external URL setting",
                url=str(target.copy_with(query=None)),
            )
        return link

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        what: str,
        body: Any = None,
        params: dict[str, str | int] | None = None,
        repeatable: bool | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        """The forge's successful answer to one API call, after the retries the policy allows
        (None for a 404 when ``missing_ok``); ``path`` may be a whole URL of the API."""
        url = self.url_of(path)
        repeat = method == "GET" if repeatable is None else repeatable
        last_failure, last_status = "", None
        asked_pause: float | None = None
        for attempt in range(self.settings.attempts):
            if attempt:
                await self._sleep(self._backoff(attempt) if asked_pause is None else asked_pause)
                asked_pause = None
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
            wait = self._rate_limit_wait(response, attempt + 1)
            if wait is not None:
                last_status = response.status_code
                last_failure = f"HTTP {last_status}: rate limited: {self._message_of(response)}"
                if wait > self.settings.max_rate_limit_wait:
                    raise self._rate_limited(what, url, wait, last_status)
                asked_pause = wait
                continue
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
            return response
        raise self._unreachable(what, url, last_failure, self.settings.attempts, last_status)

    def _backoff(self, retry: int) -> float:
        """The pause before retry number ``retry`` (1 for the second attempt)."""
        return min(self.settings.backoff * 2.0 ** (retry - 1), self.settings.max_backoff)

    def _rate_limit_wait(self, response: httpx.Response, retry: int) -> float | None:
        """Seconds the forge asks to wait before the request is tried again (as ``retry``),
        when the answer says it was rate limited (and so not acted on); None for any other
        answer. A 403 counts only with a rate-limit header (GitHub); otherwise it is a missing
        permission. Without a time to wait, the backoff applies."""
        status, headers = response.status_code, response.headers
        if status not in (403, 429):
            return None
        retry_after = _seconds_of_retry_after(headers.get(_RETRY_AFTER, ""), self._clock())
        if retry_after is not None:
            return retry_after
        exhausted = any(headers.get(name, "").strip() == "0" for name in _RATE_REMAINING)
        reset = next((headers[name] for name in _RATE_RESET if name in headers), "")
        if exhausted and reset.strip().isdigit():
            return max(0.0, float(reset) - self._clock())
        if status == 429 or exhausted:
            return self._backoff(retry)
        return None

    def _rate_limited(self, what: str, url: str, wait: float, status: int) -> ForgeUnreachable:
        return ForgeUnreachable(
            f"{what}: the forge at {self.base_url} rate-limits this token (HTTP {status}, {url}) "
            f"for another {wait:.0f}s, longer than the {self.settings.max_rate_limit_wait:g}s "
            "Tether waits; nothing was done: retry the action later, or give the forge a token "
            "of its own with a higher limit",
            url=url,
            status=status,
        )

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
            text = _explanation(response.json())
        except ValueError:
            text = response.text
        text = " ".join(text.split())[:_MESSAGE_LIMIT] or response.reason_phrase
        try:
            _, token = self._credentials.current()
        except Exception:  # the provider's own error is not this message's concern
            return text
        return text.replace(token, "***") if token else text


class ForgeDriver:
    """What every driver shares around its ``ForgeHttp``: the forge's address, a repr without
    credentials, and closing the connection pool (also as an ``async with`` block)."""

    def __init__(self, http: ForgeHttp) -> None:
        self._http = http

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()


def _describe_transport_failure(error: Exception, timeout: float) -> str:
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return f"no complete answer within {timeout:g}s"
    if isinstance(error, httpx.ConnectError):
        return "connection refused or host unreachable"
    return f"connection failed: {type(error).__name__}"


def _explanation(data: Any) -> str:
    """The human part of a forge's error body: Gitea's and GitHub's ``message`` (with GitHub's
    ``errors`` list), GitLab's ``message`` (a text, a list, or field → problems) or OAuth's
    ``error_description``."""
    if not isinstance(data, dict):
        return _flattened(data)
    errors = data.get("errors")
    parts = [
        _flattened(data.get("message")),
        _flattened(data.get("error_description") or data.get("error")),
        "; ".join(_error_item(item) for item in errors) if isinstance(errors, list) else "",
    ]
    return ": ".join(part.strip() for part in parts if part.strip()) or str(data)


def _error_item(item: Any) -> str:
    """One of GitHub's validation ``errors``: its message, else its field and code."""
    if not isinstance(item, dict):
        return str(item)
    return str(item.get("message") or f"{item.get('field', '')} {item.get('code', '')}".strip())


def _flattened(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key} {_flattened(problem)}" for key, problem in value.items())
    if isinstance(value, list):
        return "; ".join(_flattened(item) for item in value)
    return "" if value is None else str(value)


def _seconds_of_retry_after(value: str, now: float) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
