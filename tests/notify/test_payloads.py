"""Pure tests: alert values, provider specs, and the body each provider type sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tether.errors import TetherError
from tether.notify import (
    SCHEMA_VERSION,
    Alert,
    AlertEvent,
    AlertProviderError,
    ProviderSpec,
    slack_payload,
    verify_signature,
    webhook_payload,
)
from tether.notify.alertmanager import AlertmanagerAlerts, alerts_url
from tether.notify.webhook import encode, sign

STAMP = datetime(2025, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def drift(**overrides: object) -> Alert:
    fields: dict[str, object] = {
        "event": AlertEvent.DRIFT_DETECTED,
        "app": "web",
        "namespace": "shop",
        "summary": "1 object differs from Git",
        "revision": "3f2c9a1e",
        "details": {"object": "Deployment/shop/web", "fields": "spec.replicas"},
        "timestamp": STAMP,
    }
    fields.update(overrides)
    return Alert(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "severity"),
    [
        (AlertEvent.SYNC_SUCCEEDED, "info"),
        (AlertEvent.SYNC_FAILED, "error"),
        (AlertEvent.DRIFT_DETECTED, "warning"),
        (AlertEvent.DRIFT_CORRECTED, "info"),
        (AlertEvent.HEALTH_DEGRADED, "error"),
        (AlertEvent.SOURCE_UNREACHABLE, "warning"),
    ],
)
def test_severity_defaults_to_the_events(event: AlertEvent, severity: str) -> None:
    assert Alert(event=event, app="a", namespace="n", summary="s").severity == severity


def test_alert_checks_severity_and_normalises_time() -> None:
    assert drift(severity="error").severity == "error"
    with pytest.raises(ValueError, match="severity 'fatal'"):
        drift(severity="fatal")
    naive = drift(timestamp=datetime(2025, 5, 1, 12, 0))
    assert naive.timestamp.tzinfo is UTC
    shifted = drift(timestamp=datetime(2025, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
    assert shifted.timestamp_text == "2025-05-01T12:00:00.000Z"
    from_text = Alert(event="SyncFailed", app="a", namespace="n", summary="s")  # type: ignore[arg-type]
    assert from_text.event is AlertEvent.SYNC_FAILED
    before = datetime.now(UTC)
    stamped = Alert(event=AlertEvent.SYNC_FAILED, app="a", namespace="n", summary="s")
    assert before <= stamped.timestamp <= datetime.now(UTC)


def test_webhook_schema_is_stable() -> None:
    assert webhook_payload(drift()) == {
        "version": SCHEMA_VERSION,
        "event": "DriftDetected",
        "app": "web",
        "namespace": "shop",
        "severity": "warning",
        "summary": "1 object differs from Git",
        "revision": "3f2c9a1e",
        "details": {"object": "Deployment/shop/web", "fields": "spec.replicas"},
        "timestamp": "2025-05-01T12:00:00.250Z",
    }
    assert SCHEMA_VERSION == "tether.dev/v1"
    body = encode(webhook_payload(drift(summary="café ✓")))
    assert json.loads(body)["summary"] == "café ✓"


def test_signature_round_trip() -> None:
    body = encode(webhook_payload(drift()))
    header = sign(body, b"k3y")
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify_signature(body, header, b"k3y")
    assert verify_signature(body, header.upper().replace("SHA256=", "sha256="), b"k3y")
    assert not verify_signature(body, header, b"other key")
    assert not verify_signature(body + b" ", header, b"k3y")
    assert not verify_signature(body, header.removeprefix("sha256="), b"k3y")
    assert not verify_signature(body, "sha1=" + header[7:], b"k3y")
    assert not verify_signature(body, "", b"k3y")
    assert not verify_signature(body, "sha256=zz", b"k3y")
    assert not verify_signature(body, header, b"")


def test_slack_payload_has_text_and_a_coloured_attachment() -> None:
    payload = slack_payload(drift(summary="replicas <3> & more"))
    assert payload["text"] == ("[warning] DriftDetected shop/web: replicas &lt;3&gt; &amp; more")
    (attachment,) = payload["attachments"]
    assert attachment["color"] == "#d69e2e"
    assert attachment["title"] == "DriftDetected shop/web"
    assert attachment["ts"] == int(STAMP.timestamp())
    titles = {field["title"]: field["value"] for field in attachment["fields"]}
    assert titles == {
        "Revision": "3f2c9a1e",
        "object": "Deployment/shop/web",
        "fields": "spec.replicas",
    }
    colours = {
        slack_payload(drift(severity=severity))["attachments"][0]["color"]
        for severity in ("info", "warning", "error")
    }
    assert len(colours) == 3


def test_alertmanager_firing_payload() -> None:
    (entry,) = AlertmanagerAlerts().payload(drift(details={"last-applied": "x", "summary": "y"}))
    assert entry["labels"] == {
        "alertname": "DriftDetected",
        "app": "web",
        "namespace": "shop",
        "severity": "warning",
        "source": "tether",
    }
    assert entry["annotations"] == {
        "summary": "1 object differs from Git",
        "revision": "3f2c9a1e",
        "last_applied": "x",
        "detail_summary": "y",
    }
    assert entry["startsAt"] == "2025-05-01T12:00:00.250Z"
    assert "endsAt" not in entry
    assert alerts_url("http://am:9093/") == "http://am:9093/api/v2/alerts"


def test_alertmanager_resolution_reuses_the_fired_severity() -> None:
    builder = AlertmanagerAlerts()
    fired = drift(severity="error")
    builder.delivered(fired)
    corrected = drift(event=AlertEvent.DRIFT_CORRECTED, summary="drift corrected")
    (entry,) = builder.payload(corrected)
    assert entry["labels"]["alertname"] == "DriftDetected"
    assert entry["labels"]["severity"] == "error"
    assert entry["endsAt"] == entry["startsAt"] == "2025-05-01T12:00:00.250Z"
    assert entry["annotations"]["resolvedBy"] == "DriftCorrected"
    builder.delivered(corrected)
    assert builder.payload(corrected)[0]["labels"]["severity"] == "warning"  # forgotten: default

    succeeded = drift(event=AlertEvent.SYNC_SUCCEEDED, summary="synced")
    names = [entry["labels"]["alertname"] for entry in builder.payload(succeeded)]
    assert names == ["SyncFailed", "SourceUnreachable"]


SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXsecret"


def test_provider_spec_validation_masks_the_url() -> None:
    assert ProviderSpec("ops", "slack", SLACK_URL).events == frozenset(AlertEvent)
    cases = [
        (dict(name="", type="slack", url=SLACK_URL), "has no name"),
        (dict(name="ops", type="teams", url=SLACK_URL), "type 'teams' is not one of"),
        (
            dict(name="ops", type="slack", url="ftp://hooks.slack.com/services/T/B/XXXXsecret"),
            "not an http",
        ),
        (dict(name="ops", type="slack", url=SLACK_URL, hmac_key=b"k"), "only webhook"),
        (dict(name="ops", type="webhook", url="https://x.example", hmac_key=b""), "empty"),
        (dict(name="ops", type="slack", url=SLACK_URL, timeout=0), "timeout"),
        (dict(name="ops", type="slack", url=SLACK_URL, events=frozenset({"Nope"})), "Nope"),
    ]
    for kwargs, message in cases:
        with pytest.raises(AlertProviderError, match=message) as caught:
            ProviderSpec(**kwargs)  # type: ignore[arg-type]
        assert isinstance(caught.value, TetherError)
        assert "XXXXsecret" not in str(caught.value)
    spec = ProviderSpec("ops", "slack", SLACK_URL, headers={"Authorization": "Bearer t0ken"})
    assert "XXXXsecret" not in repr(spec) and "t0ken" not in repr(spec)
    assert spec.display_url == "https://hooks.slack.com/services/***"
