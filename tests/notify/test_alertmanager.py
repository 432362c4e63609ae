"""Against the real Alertmanager from Debian's prometheus-alertmanager package: alerts arrive
with their labels and annotations, and the paired events resolve them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.notify.receivers import Alertmanager
from tether.notify import Alert, AlertEvent, DeliveryResult, Notifier, ProviderSpec


def send_all(alertmanager: Alertmanager, *alerts: Alert) -> list[DeliveryResult]:
    async def go() -> list[DeliveryResult]:
        spec = ProviderSpec("am", "alertmanager", alertmanager.url + "/", timeout=5.0)
        results: list[DeliveryResult] = []
        async with Notifier([spec], retries=0) as notifier:
            for sent in alerts:
                results += await notifier.send(sent)
        return results

    return asyncio.run(asyncio.wait_for(go(), 60))


def app_alerts(alertmanager: Alertmanager, app: str, **filters: str) -> list[dict[str, Any]]:
    return [a for a in alertmanager.alerts(**filters) if a["labels"].get("app") == app]


def is_resolved(entry: dict[str, Any]) -> bool:
    ends = datetime.fromisoformat(entry["endsAt"].replace("Z", "+00:00"))
    return ends <= datetime.now(UTC)


def unique_app() -> str:
    return f"web-{uuid.uuid4().hex[:8]}"


def test_drift_detected_fires_and_drift_corrected_resolves(alertmanager: Alertmanager) -> None:
    app = unique_app()
    detected = Alert(
        event=AlertEvent.DRIFT_DETECTED,
        app=app,
        namespace="shop",
        summary="Deployment/shop/web differs from Git",
        revision="3f2c9a1e0b7d",
        details={"object": "Deployment/shop/web", "fields": "spec.replicas"},
    )
    (result,) = send_all(alertmanager, detected)
    assert result == DeliveryResult("am", True, 200, 1, ""), alertmanager.log

    (firing,) = app_alerts(alertmanager, app, active="true")
    assert firing["labels"] == {
        "alertname": "DriftDetected",
        "app": app,
        "namespace": "shop",
        "severity": "warning",
        "source": "tether",
    }
    assert firing["annotations"] == {
        "summary": "Deployment/shop/web differs from Git",
        "revision": "3f2c9a1e0b7d",
        "object": "Deployment/shop/web",
        "fields": "spec.replicas",
    }
    assert firing["status"]["state"] == "active"
    assert not is_resolved(firing)

    corrected = Alert(
        event=AlertEvent.DRIFT_CORRECTED,
        app=app,
        namespace="shop",
        summary="drift corrected",
        revision="3f2c9a1e0b7d",
    )
    (result,) = send_all(alertmanager, corrected)
    assert result.ok, result.error
    assert app_alerts(alertmanager, app, active="true") == []
    assert all(is_resolved(entry) for entry in app_alerts(alertmanager, app))


def test_resolution_matches_an_overridden_severity(alertmanager: Alertmanager) -> None:
    app = unique_app()
    fired = Alert(
        event=AlertEvent.DRIFT_DETECTED,
        app=app,
        namespace="prod",
        summary="drift",
        severity="error",
    )
    corrected = Alert(
        event=AlertEvent.DRIFT_CORRECTED, app=app, namespace="prod", summary="corrected"
    )
    # Both through one Notifier: it remembers the severity the firing alert had.
    send_all(alertmanager, fired)
    assert [a["labels"]["severity"] for a in app_alerts(alertmanager, app)] == ["error"]
    results = send_all(alertmanager, fired, corrected)
    assert all(r.ok for r in results)
    assert app_alerts(alertmanager, app, active="true") == []


def test_sync_succeeded_resolves_sync_failed_and_source_unreachable(
    alertmanager: Alertmanager,
) -> None:
    app = unique_app()
    failed = Alert(
        event=AlertEvent.SYNC_FAILED,
        app=app,
        namespace="shop",
        summary="Deployment/shop/web apply failed: field is immutable",
    )
    unreachable = Alert(
        event=AlertEvent.SOURCE_UNREACHABLE,
        app=app,
        namespace="shop",
        summary="https://git.example.com/org/gitops.git@main unreachable",
    )
    degraded = Alert(
        event=AlertEvent.HEALTH_DEGRADED,
        app=app,
        namespace="shop",
        summary="Deployment/shop/web 0/3 available",
    )
    results = send_all(alertmanager, failed, unreachable, degraded)
    assert all(r.ok for r in results), [r.error for r in results]
    names = sorted(a["labels"]["alertname"] for a in app_alerts(alertmanager, app, active="true"))
    assert names == ["HealthDegraded", "SourceUnreachable", "SyncFailed"]

    succeeded = Alert(event=AlertEvent.SYNC_SUCCEEDED, app=app, namespace="shop", summary="synced")
    (result,) = send_all(alertmanager, succeeded)
    assert result.ok, result.error
    still = [a["labels"]["alertname"] for a in app_alerts(alertmanager, app, active="true")]
    assert still == ["HealthDegraded"]  # no partner: it resolves through resolve_timeout


def test_alertmanager_refusal_is_not_retried(alertmanager: Alertmanager) -> None:
    async def go() -> list[DeliveryResult]:
        # A path Alertmanager does not serve: a 4xx answer ends the delivery at once.
        spec = ProviderSpec("am", "alertmanager", alertmanager.url + "/nothing-here")
        async with Notifier([spec], retries=3, backoff=0.01) as notifier:
            return await notifier.send(
                Alert(event=AlertEvent.SYNC_FAILED, app="a", namespace="n", summary="s")
            )

    (result,) = asyncio.run(go())
    assert not result.ok
    assert result.status_code is not None and 400 <= result.status_code < 500
    assert result.attempts == 1
    assert alertmanager.version().startswith("alertmanager, version")
