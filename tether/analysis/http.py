"""One HTTP request for a provider (Prometheus, web), with a bounded time and plain errors.

Every way a request can go wrong becomes a ``MeasurementError`` that names the method and URL
and what happened (refused, timed out after N s, the status and the start of the body). The
whole exchange, connection to last byte, is bounded by ``timeout`` seconds, so a server that
trickles its answer cannot hold a measurement longer than that. Redirects are not followed: a
metrics endpoint that moves is a configuration error worth seeing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx

from tether.analysis.provider import Header, MeasurementError

_BODY_EXCERPT = 200


async def request_json(
    method: str,
    url: str,
    *,
    headers: Sequence[Header] = (),
    params: dict[str, str] | None = None,
    content: str | None = None,
    timeout: float,
) -> Any:
    """The decoded JSON answer of a 2xx response; MeasurementError for anything else."""
    what = f"{method} {url}"
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await asyncio.wait_for(
                client.request(
                    method,
                    url,
                    params=params,
                    headers={header.name: header.value for header in headers},
                    content=content,
                ),
                timeout,
            )
    except (TimeoutError, httpx.TimeoutException):
        raise MeasurementError(f"{what}: no answer within {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise MeasurementError(f"{what}: {_transport_reason(error)}") from None
    if not response.is_success:
        raise MeasurementError(
            f"{what}: answered {response.status_code} {response.reason_phrase}: "
            f"{_excerpt(response.text)}"
        )
    try:
        return json.loads(response.content)
    except ValueError:
        content_type = response.headers.get("content-type", "no content type")
        raise MeasurementError(
            f"{what}: the answer is not JSON ({content_type}): {_excerpt(response.text)}"
        ) from None


def _transport_reason(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return f"could not connect ({error})"
    return f"{type(error).__name__}: {error}"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "..."
