"""Alert sinks: telling people what Tether did, through webhooks, Slack and Alertmanager.

    notifier = Notifier([
        ProviderSpec("ops", "slack", "https://hooks.slack.com/services/T0/B0/…"),
        ProviderSpec("am", "alertmanager", "http://alertmanager:9093",
                     events=frozenset({AlertEvent.DRIFT_DETECTED, AlertEvent.DRIFT_CORRECTED})),
        ProviderSpec("audit-hook", "webhook", "https://hooks.example.com/tether", hmac_key=key),
    ])
    results = await notifier.send(Alert(event=AlertEvent.DRIFT_DETECTED, app="web",
                                        namespace="shop", summary="1 object differs from Git"))
    await notifier.aclose()

Providers: ``webhook`` (Tether's ``tether.dev/v1`` JSON, HMAC-signed; receivers use
:func:`verify_signature`), ``slack`` (Slack/Mattermost incoming webhooks), ``alertmanager``
(API v2; DriftCorrected and SyncSucceeded resolve the alerts DriftDetected and SyncFailed fired).
``send`` never raises; each provider's outcome is a :class:`DeliveryResult`. Provider URLs are
shown masked everywhere (:func:`masked_url`). A bad spec raises :class:`AlertProviderError`.
"""

from tether.notify.alert import SEVERITIES, Alert, AlertEvent
from tether.notify.alertmanager import RESOLVES
from tether.notify.notifier import DeliveryResult, Notifier
from tether.notify.provider import PROVIDER_TYPES, AlertProviderError, ProviderSpec
from tether.notify.redact import masked_url
from tether.notify.slack import slack_payload
from tether.notify.webhook import SCHEMA_VERSION, verify_signature, webhook_payload

__all__ = [
    "PROVIDER_TYPES",
    "RESOLVES",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "Alert",
    "AlertEvent",
    "AlertProviderError",
    "DeliveryResult",
    "Notifier",
    "ProviderSpec",
    "masked_url",
    "slack_payload",
    "verify_signature",
    "webhook_payload",
]
