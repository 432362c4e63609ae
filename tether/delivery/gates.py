"""The webhook gate: a rollout step that asks an HTTP endpoint whether to go on.

The gate is POSTed a JSON body naming the App, the target, the candidate's commit, the step and
the weight. A 2xx answer passes; any other status, no answer within the step's timeout, or a
refused connection fails the step (and the rollout's ``onFailure`` applies). The message kept
in status and the audit trail names the URL and what happened, never a credential in the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tether.delivery.model import GateStatus, Webhook


@dataclass(frozen=True)
class GateCall:
    """What the gate is told about the rollout."""

    app: str
    target: str
    revision: str
    step: int
    weight: int

    def payload(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "target": self.target,
            "revision": self.revision,
            "step": self.step,
            "weight": self.weight,
        }


def shown_url(url: str) -> str:
    """``url`` without any user:password part, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


async def ask_gate(webhook: Webhook, call: GateCall) -> GateStatus:
    """POST ``call`` to the gate; its verdict as the step's ``GateStatus``."""
    where = shown_url(webhook.url)
    try:
        async with httpx.AsyncClient(timeout=webhook.timeout, follow_redirects=False) as client:
            response = await client.post(webhook.url, json=call.payload())
    except httpx.TimeoutException:
        return GateStatus(call.step, False, f"POST {where}: no answer within {webhook.timeout:g}s")
    except httpx.HTTPError as error:
        return GateStatus(call.step, False, f"POST {where}: {type(error).__name__}")
    text = " ".join(response.text.split())[:200]
    passed = 200 <= response.status_code < 300
    verdict = "passed" if passed else "refused"
    return GateStatus(
        call.step,
        passed,
        f"POST {where}: {response.status_code} {verdict}" + (f": {text}" if text else ""),
    )
