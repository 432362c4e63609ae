"""Delivering to a real HTTP server started by the test: bodies, signatures, retries, timeouts,
filters, and no provider secret in any result or log record."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

import pytest

from tests.notify.receivers import Recorder, Reply, free_port
from tether.notify import (
    Alert,
    AlertEvent,
    AlertProviderError,
    DeliveryResult,
    Notifier,
    ProviderSpec,
    verify_signature,
)

KEY = b"shared webhook key"
# A guard so a broken timeout fails the test instead of hanging it; not a timing assertion.
GUARD_SECONDS = 60


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, GUARD_SECONDS))


def alert(event: AlertEvent = AlertEvent.DRIFT_DETECTED, **overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "event": event,
        "app": "web",
        "namespace": "shop",
        "summary": "1 object differs from Git",
        "revision": "3f2c9a1e0b7d",
        "details": {"object": "Deployment/shop/web", "fields": "spec.replicas"},
    }
    fields.update(overrides)
    return Alert(**fields)


def deliver(
    providers: list[ProviderSpec], sent: Alert | None = None, **options: Any
) -> list[DeliveryResult]:
    async def go() -> list[DeliveryResult]:
        async with Notifier(providers, **options) as notifier:
            return await notifier.send(sent or alert())

    result: list[DeliveryResult] = run(go())
    return result


def test_webhook_posts_the_schema_signed(recorder: Recorder) -> None:
    spec = ProviderSpec(
        "hook",
        "webhook",
        f"{recorder.url}/tether",
        hmac_key=KEY,
        headers={"Authorization": "Bearer abc"},
    )
    (result,) = deliver([spec], alert(severity="error"))
    assert result == DeliveryResult("hook", True, 200, 1, "")

    (request,) = recorder.received
    assert request.target == "/tether"
    assert request.header("Content-Type") == "application/json"
    assert request.header("Authorization") == "Bearer abc"
    assert request.header("X-Tether-Event") == "DriftDetected"
    assert len(request.header("X-Tether-Delivery")) >= 16
    body = json.loads(request.body)
    assert set(body) == {
        "version",
        "event",
        "app",
        "namespace",
        "severity",
        "summary",
        "revision",
        "details",
        "timestamp",
    }
    assert body["version"] == "tether.dev/v1"
    assert (body["event"], body["app"], body["namespace"], body["severity"]) == (
        "DriftDetected",
        "web",
        "shop",
        "error",
    )
    assert body["details"] == {"object": "Deployment/shop/web", "fields": "spec.replicas"}
    assert body["timestamp"].endswith("Z")

    signature = request.header("X-Tether-Signature")
    assert verify_signature(request.body, signature, KEY)
    assert not verify_signature(request.body, signature, b"wrong key")
    assert not verify_signature(request.body.replace(b"shop", b"prod"), signature, KEY)


def test_unsigned_webhook_has_no_signature_and_unique_delivery_ids(recorder: Recorder) -> None:
    spec = ProviderSpec("hook", "webhook", recorder.url)

    async def twice() -> None:
        async with Notifier([spec]) as notifier:
            await notifier.send(alert())
            await notifier.send(alert())

    run(twice())
    first, second = recorder.received
    assert first.header("X-Tether-Signature") == ""
    assert first.header("X-Tether-Delivery") != second.header("X-Tether-Delivery")


def test_slack_payload_shape(recorder: Recorder) -> None:
    spec = ProviderSpec("ops", "slack", f"{recorder.url}/services/T000/B000/XXXX")
    (result,) = deliver([spec], alert(AlertEvent.SYNC_FAILED, summary="apply failed"))
    assert result.ok
    (request,) = recorder.received
    assert request.target == "/services/T000/B000/XXXX"
    body = json.loads(request.body)
    assert body["text"] == "[error] SyncFailed shop/web: apply failed"
    (attachment,) = body["attachments"]
    assert attachment["color"].startswith("#")
    assert {"title": "Revision", "value": "3f2c9a1e0b7d", "short": True} in attachment["fields"]
    assert request.header("X-Tether-Signature") == ""


def test_retries_5xx_until_delivered(recorder: Recorder) -> None:
    recorder.reply(Reply(500), Reply(503), Reply(200))
    spec = ProviderSpec("hook", "webhook", recorder.url, hmac_key=KEY)
    (result,) = deliver([spec], retries=3, backoff=0.01)
    assert result == DeliveryResult("hook", True, 200, 3, "")
    assert len(recorder.received) == 3
    deliveries = {request.header("X-Tether-Delivery") for request in recorder.received}
    assert len(deliveries) == 1  # one delivery, retried: receivers can drop duplicates
    assert all(
        verify_signature(request.body, request.header("X-Tether-Signature"), KEY)
        for request in recorder.received
    )


def test_retries_429_and_gives_up_after_the_last_retry(recorder: Recorder) -> None:
    recorder.reply(Reply(429, headers={"Retry-After": "0"}), *[Reply(502, b"bad gateway")] * 5)
    (result,) = deliver([ProviderSpec("hook", "webhook", recorder.url)], retries=2, backoff=0.01)
    assert not result.ok
    assert (result.status_code, result.attempts) == (502, 3)
    assert "HTTP 502" in result.error and "bad gateway" in result.error
    assert len(recorder.received) == 3


def test_no_retry_on_4xx(recorder: Recorder) -> None:
    recorder.reply(Reply(400, b"invalid_payload"))
    (result,) = deliver(
        [ProviderSpec("ops", "slack", f"{recorder.url}/hooks/abc")], retries=3, backoff=0.01
    )
    assert (result.ok, result.status_code, result.attempts) == (False, 400, 1)
    assert "HTTP 400 Bad Request: invalid_payload" in result.error
    assert len(recorder.received) == 1


def test_connection_refused_is_a_masked_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/XXXXrefused"
    (result,) = deliver([ProviderSpec("ops", "slack", url)], retries=1, backoff=0.01)
    assert (result.ok, result.status_code, result.attempts) == (False, None, 2)
    assert "ConnectError" in result.error
    assert "/services/***" in result.error
    assert "XXXXrefused" not in result.error
    assert "XXXXrefused" not in caplog.text
    failures = [
        r for r in caplog.records if r.name == "tether.notify" and r.levelno >= logging.WARNING
    ]
    assert len(failures) == 1 and "'ops'" in failures[0].getMessage()


def test_timeouts_are_bounded(recorder: Recorder) -> None:
    recorder.reply(Reply(delay=20), Reply(delay=20))
    spec = ProviderSpec("hook", "webhook", recorder.url, timeout=0.2)
    (result,) = deliver([spec], retries=1, backoff=0.01)
    assert (result.ok, result.status_code, result.attempts) == (False, None, 2)
    assert "no answer within 0.2s" in result.error


def test_event_filters(recorder: Recorder) -> None:
    drift_only = ProviderSpec(
        "drift", "webhook", f"{recorder.url}/drift", events=frozenset({AlertEvent.DRIFT_DETECTED})
    )
    everything = ProviderSpec("all", "webhook", f"{recorder.url}/all")
    results = deliver([drift_only, everything], alert(AlertEvent.SYNC_SUCCEEDED))
    assert [r.provider for r in results] == ["all"]
    assert [r.target for r in recorder.received] == ["/all"]

    results = deliver([drift_only, everything], alert(AlertEvent.DRIFT_DETECTED))
    assert [r.provider for r in results] == ["drift", "all"]
    assert all(r.ok for r in results)
    assert deliver([drift_only], alert(AlertEvent.SYNC_FAILED)) == []


def test_each_provider_gets_its_own_result(recorder: Recorder) -> None:
    recorder.reply(Reply(404))
    specs = [
        ProviderSpec("refused", "webhook", f"http://127.0.0.1:{free_port()}/x"),
        ProviderSpec("answered", "webhook", recorder.url),
    ]
    results = deliver(specs, retries=0)
    assert [(r.provider, r.ok) for r in results] == [("refused", False), ("answered", False)]
    assert results[1].status_code == 404


def test_send_after_close_does_not_raise(recorder: Recorder) -> None:
    async def go() -> list[DeliveryResult]:
        notifier = Notifier([ProviderSpec("hook", "webhook", recorder.url)])
        await notifier.aclose()
        await notifier.aclose()
        return await notifier.send(alert())

    (result,) = run(go())
    assert not result.ok and result.attempts == 0 and result.error.startswith("could not send")


def test_notifier_refuses_duplicate_names_and_bad_options(recorder: Recorder) -> None:
    spec = ProviderSpec("hook", "webhook", recorder.url)
    with pytest.raises(AlertProviderError, match="'hook' are defined more than once"):
        Notifier([spec, spec])
    with pytest.raises(ValueError, match="must not be negative"):
        Notifier([spec], retries=-1)


SECRETS = ("T0SECRET", "B0SECRET", "xoxsecrettoken", "hunter2pass", "t0kenvalue")


@pytest.mark.parametrize("status", [200, 400, 500])
def test_secrets_never_in_results_or_logs(
    recorder: Recorder, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder.reply(*[Reply(status, echo_target=True)] * 4)
    port = recorder.url.rsplit(":", 1)[1]
    specs = [
        ProviderSpec(
            "ops", "slack", f"http://127.0.0.1:{port}/services/T0SECRET/B0SECRET/xoxsecrettoken"
        ),
        ProviderSpec(
            "hook", "webhook", f"http://tether:hunter2pass@127.0.0.1:{port}/hook?token=t0kenvalue"
        ),
    ]
    results = deliver(specs, retries=1, backoff=0.01)
    assert [r.ok for r in results] == [status == 200] * 2
    assert len(recorder.received) == (2 if status != 500 else 4)
    assert caplog.records, "httpx logs every request: the check below must see those records"
    seen = [r.error for r in results] + [record.getMessage() for record in caplog.records]
    seen += [caplog.text, repr(specs)]
    for text in seen:
        for secret in SECRETS:
            assert secret not in text, text
    requests_logged = [
        m
        for m in map(logging.LogRecord.getMessage, caplog.records)
        if m.startswith("HTTP Request: POST")
    ]
    assert any("/services/***" in message for message in requests_logged), requests_logged
    if status != 200:
        assert "http://127.0.0.1:" + port + "/services/***" in results[0].error
        assert "http://***@127.0.0.1:" + port + "/hook?token=***" in results[1].error
