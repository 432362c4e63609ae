"""The webhook gate: a rollout step that asks an HTTP endpoint whether to go on.

The gate is POSTed a JSON body naming the App, the target, the candidate's commit, the step, the
weight and the attempt. What the answer means (decision 0027):

- 2xx passes the step;
- any other clear answer (a 4xx, a redirect) is a refusal: the rollout's ``onFailure`` applies;
- no answer (refused connection, timeout) or a 5xx, 408 or 429 is not an answer: the call is
  retried with backoff (0.5 s doubling, at most 5 s apart) until the step's ``timeout`` has
  passed since the first call, and then the gate is Inconclusive: the rollout pauses and alerts,
  it never passes silently.

Each call is counted in the rollout's status (``GateStatus``: ``Calling``, the attempts, when the
first one started) before it is sent, so a replica that takes over goes on with the same
deadline and attempt count: the only call that can be repeated is one in flight when the agent
died (the body's ``attempt`` lets a receiver see it). The message kept in status and the audit
trail names the URL and what happened, never a credential in the URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tether.delivery.model import GateOutcome, GateStatus, Webhook

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 5.0
_NOT_AN_ANSWER = frozenset({408, 429})  # with every 5xx: retried until the step's timeout
RecordCall = Callable[[GateStatus], Awaitable[None]]
Now = Callable[[], datetime]


@dataclass(frozen=True)
class GateCall:
    """What the gate is told about the rollout."""

    app: str
    target: str
    revision: str
    step: int
    weight: int

    def payload(self, attempt: int = 1) -> dict[str, Any]:
        return {
            "app": self.app,
            "target": self.target,
            "revision": self.revision,
            "step": self.step,
            "weight": self.weight,
            "attempt": attempt,
        }


def shown_url(url: str) -> str:
    """``url`` without any user:password part, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def backoff(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th call went unanswered."""
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(attempts - 1, 0)))


async def ask_gate(
    webhook: Webhook,
    call: GateCall,
    earlier: GateStatus | None = None,
    record: RecordCall | None = None,
    now: Now = lambda: datetime.now(UTC),
) -> GateStatus:
    """Call the gate until it answers clearly or the step's timeout has passed since the first
    call (``earlier``: the calls a previous replica recorded); ``record`` is awaited with the
    ``Calling`` status before each call. The verdict as the step's ``GateStatus``."""
    where = f"POST {shown_url(webhook.url)}"
    going_on = earlier is not None and earlier.outcome is GateOutcome.CALLING
    attempts = earlier.attempts if earlier is not None and going_on else 0
    first = (
        datetime.fromisoformat(earlier.started_at)
        if earlier is not None and going_on and earlier.started_at
        else now()
    )
    deadline = first + timedelta(seconds=webhook.timeout)
    last = "not called"
    while (left := (deadline - now()).total_seconds()) > 0:
        attempts += 1
        calling = f"{where}: attempt {attempts}" + (f" (last: {last})" if attempts > 1 else "")
        if record is not None:
            await record(
                GateStatus(
                    call.step, False, calling, GateOutcome.CALLING, attempts, first.isoformat()
                )
            )
        answer = await _post(webhook.url, call.payload(attempts), left)
        if isinstance(answer, httpx.Response) and not _retried(answer.status_code):
            return _judged(answer, where, call.step, attempts, first)
        last = _unanswered(answer, left)
        pause = min(backoff(attempts), (deadline - now()).total_seconds())
        if pause > 0:
            await asyncio.sleep(pause)
    return GateStatus(
        call.step,
        False,
        f"{where}: no answer within the step's {webhook.timeout:g}s after {attempts} "
        f"attempt(s) (last: {last})",
        GateOutcome.INCONCLUSIVE,
        attempts,
        first.isoformat(),
    )


async def _post(url: str, payload: dict[str, Any], timeout: float) -> httpx.Response | Exception:
    """The gate's answer, or what kept it from answering."""
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            return await client.post(url, json=payload)
    except httpx.HTTPError as error:
        return error


def _retried(status: int) -> bool:
    return status >= 500 or status in _NOT_AN_ANSWER


def _unanswered(answer: httpx.Response | Exception, timeout: float) -> str:
    if isinstance(answer, httpx.Response):
        return f"{answer.status_code}"
    if isinstance(answer, httpx.TimeoutException):
        return f"no answer within {timeout:.3g}s"
    return type(answer).__name__


def _judged(
    response: httpx.Response, where: str, step: int, attempts: int, first: datetime
) -> GateStatus:
    text = " ".join(response.text.split())[:200]
    passed = 200 <= response.status_code < 300
    verdict = "passed" if passed else "refused"
    message = f"{where}: {response.status_code} {verdict}" + (f": {text}" if text else "")
    return GateStatus(step, passed, message, None, attempts, first.isoformat())
