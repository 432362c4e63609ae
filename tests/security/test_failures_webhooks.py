"""Issue #12, "Why": an empty webhook secret file meant no authentication at all (medium), and
the webhook answered 500 to a non-ASCII signature header or to a signed non-object body (low).
Against a real agent process: every hostile call gets a 4xx, a replayed delivery wakes nothing,
and the agent keeps serving."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from tests.agent.conftest import WEBHOOK_SECRET

PUSH = json.dumps({"repository": {"clone_url": "https://git.example.com/org/none.git"}}).encode()


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()


def test_hostile_webhook_calls_get_4xx_and_replays_are_ignored(
    start_agent,
) -> None:
    agent = start_agent()
    hook = f"{agent.url}/hooks/github"
    with httpx.Client(timeout=30) as client:

        def post(body: bytes, **headers: str | bytes) -> httpx.Response:
            return client.post(hook, content=body, headers=headers)

        # A non-ASCII signature header (raw bytes on the wire).
        answer = post(PUSH, **{"X-Hub-Signature-256": "sha256=é✓".encode()})
        assert answer.status_code == 401
        # Signed bodies that are not a JSON object, or not JSON, or too deep to read.
        for body in (b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b"[" * 100_000, b"{"):
            answer = post(body, **{"X-Hub-Signature-256": signature(body)})
            assert answer.status_code == 400, (body[:10], answer.text)
        # A repository that is not an object, values that are not strings.
        body = json.dumps({"repository": [1], "project": {"clone_url": 5}}).encode()
        assert post(body, **{"X-Hub-Signature-256": signature(body)}).status_code == 202
        # Form-encoded without a payload, and a body over the limit.
        body = b"a=b"
        headers = {
            "X-Hub-Signature-256": signature(body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        assert post(body, **headers).status_code == 400
        huge = b" " * (5 * 1024 * 1024)
        assert post(huge, **{"X-Hub-Signature-256": signature(huge)}).status_code == 413

        # A delivery is handled once; the forge's retry (same id) is answered and ignored.
        headers = {"X-Hub-Signature-256": signature(PUSH), "X-GitHub-Delivery": "d-1"}
        first, again = post(PUSH, **headers), post(PUSH, **headers)
        assert first.status_code == 202 and "replay" not in first.json()
        assert again.status_code == 200 and again.json()["replay"] is True
        other = post(PUSH, **{**headers, "X-GitHub-Delivery": "d-2"})
        assert other.status_code == 202

        assert client.get(f"{agent.url}/healthz").status_code == 200
    assert "Traceback" not in agent.log.read_text()
