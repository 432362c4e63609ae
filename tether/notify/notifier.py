"""Delivering alerts: one Notifier holds the providers and sends each alert to every provider
whose event filter accepts it, concurrently, with retries.

Retries: connection errors, timeouts, HTTP 5xx and 429 are retried up to ``retries`` more times,
waiting ``backoff * 2**n`` seconds between attempts (at least what a 429/503 ``Retry-After`` asks,
up to 30 s). Other answers (2xx: delivered; 3xx and 4xx: refused) end the delivery. Each attempt is
bounded by the provider's ``timeout``.

``send`` never raises: the outcome of each delivery is a :class:`DeliveryResult`, and failures are
logged on ``tether.notify``. Neither shows a provider URL's secret parts (see
:mod:`tether.notify.redact`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from types import TracebackType

import httpx

from tether.notify.alert import Alert
from tether.notify.alertmanager import AlertmanagerAlerts, alerts_url
from tether.notify.provider import ALERTMANAGER, SLACK, WEBHOOK, AlertProviderError, ProviderSpec
from tether.notify.redact import Redactor, install, uninstall
from tether.notify.slack import slack_payload
from tether.notify.webhook import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    encode,
    sign,
    webhook_payload,
)

logger = logging.getLogger("tether.notify")

USER_AGENT = "tether-notify/1"
MAX_RETRY_AFTER = 30.0
_BODY_EXCERPT = 200


@dataclass(frozen=True)
class DeliveryResult:
    """How delivering one alert to one provider ended.

    ``status_code`` is the last HTTP status (None when no answer came); ``attempts`` counts the
    requests made; ``error`` says what went wrong (empty when ``ok``), with the URL masked.
    """

    provider: str
    ok: bool
    status_code: int | None
    attempts: int
    error: str = ""


@dataclass(frozen=True)
class _Outgoing:
    url: str
    body: bytes
    headers: dict[str, str]


class Notifier:
    """Sends alerts to providers. Use ``async with Notifier(...)`` or call :meth:`aclose`."""

    def __init__(
        self, providers: list[ProviderSpec], *, retries: int = 3, backoff: float = 0.5
    ) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        names = [spec.name for spec in providers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise AlertProviderError(
                f"alert providers {', '.join(map(repr, duplicates))} are defined more than once: "
                "give every provider its own name"
            )
        self.providers = list(providers)
        self._retries = retries
        self._backoff = backoff
        self._redactors = {
            spec.name: Redactor(spec.url, secret_path=spec.secret_path) for spec in providers
        }
        self._alertmanager = {
            spec.name: AlertmanagerAlerts() for spec in providers if spec.type == ALERTMANAGER
        }
        install(list(self._redactors.values()))
        self._client = httpx.AsyncClient(headers={"User-Agent": USER_AGENT})
        self._closed = False

    async def __aenter__(self) -> Notifier:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def send(self, alert: Alert) -> list[DeliveryResult]:
        """Deliver ``alert`` to every provider that accepts its event, in provider order."""
        targets = [spec for spec in self.providers if alert.event in spec.events]
        return list(await asyncio.gather(*(self._deliver(spec, alert) for spec in targets)))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()
        uninstall(list(self._redactors.values()))

    async def _deliver(self, spec: ProviderSpec, alert: Alert) -> DeliveryResult:
        redactor = self._redactors[spec.name]
        try:
            result = await self._post(spec, self._outgoing(spec, alert), redactor)
        except Exception as error:
            detail = redactor.scrub(f"{type(error).__name__}: {error}")
            result = DeliveryResult(spec.name, False, None, 0, f"could not send: {detail}")
        if result.ok:
            if spec.name in self._alertmanager:
                self._alertmanager[spec.name].delivered(alert)
        else:
            logger.warning(
                "%s alert for %s/%s not delivered to %s provider %r after %d attempt(s): %s",
                alert.event,
                alert.namespace,
                alert.app,
                spec.type,
                spec.name,
                result.attempts,
                result.error,
            )
        return result

    def _outgoing(self, spec: ProviderSpec, alert: Alert) -> _Outgoing:
        headers = {**spec.headers, "Content-Type": "application/json"}
        if spec.type == WEBHOOK:
            body = encode(webhook_payload(alert))
            headers[EVENT_HEADER] = str(alert.event)
            headers[DELIVERY_HEADER] = uuid.uuid4().hex
            if spec.hmac_key is not None:
                headers[SIGNATURE_HEADER] = sign(body, spec.hmac_key)
            return _Outgoing(spec.url, body, headers)
        if spec.type == SLACK:
            return _Outgoing(spec.url, encode(slack_payload(alert)), headers)
        payload = self._alertmanager[spec.name].payload(alert)
        return _Outgoing(alerts_url(spec.url), encode(payload), headers)

    async def _post(
        self, spec: ProviderSpec, outgoing: _Outgoing, redactor: Redactor
    ) -> DeliveryResult:
        where = f"POST {redactor.scrub(outgoing.url)}"
        attempts = 0
        while True:
            attempts += 1
            status: int | None = None
            retry_after = 0.0
            try:
                async with asyncio.timeout(spec.timeout):
                    response = await self._client.post(
                        outgoing.url,
                        content=outgoing.body,
                        headers=outgoing.headers,
                        timeout=spec.timeout,
                    )
            except (httpx.TransportError, TimeoutError) as error:
                problem = _transport_problem(error, spec.timeout)
                retryable = True
            else:
                status = response.status_code
                if response.is_success:
                    return DeliveryResult(spec.name, True, status, attempts)
                problem = _http_problem(response)
                retryable = status == 429 or status >= 500
                retry_after = _retry_after(response)
            error_text = redactor.scrub(f"{problem} ({where})")
            if not retryable or attempts > self._retries:
                return DeliveryResult(spec.name, False, status, attempts, error_text)
            delay = max(self._backoff * 2 ** (attempts - 1), retry_after)
            logger.info(
                "provider %r: attempt %d failed, retrying in %.2fs: %s",
                spec.name,
                attempts,
                delay,
                error_text,
            )
            await asyncio.sleep(delay)


def _transport_problem(error: Exception, timeout: float) -> str:
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return f"no answer within {timeout:g}s ({type(error).__name__})"
    return f"{type(error).__name__}: {error or 'connection failed'}"


def _http_problem(response: httpx.Response) -> str:
    problem = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    try:
        excerpt = " ".join(response.text.split())[:_BODY_EXCERPT]
    except (UnicodeDecodeError, LookupError):
        excerpt = ""
    return f"{problem}: {excerpt}" if excerpt else problem


def _retry_after(response: httpx.Response) -> float:
    """Seconds a 429 or 503 asks to wait (only the delay-seconds form), capped."""
    if response.status_code not in (429, 503):
        return 0.0
    try:
        return min(max(float(response.headers.get("Retry-After", "0")), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return 0.0
