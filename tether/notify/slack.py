"""Slack-compatible incoming webhooks (Slack, Mattermost and others that accept the same body).

Body::

    {"text": "[warning] DriftDetected shop/web: 1 object differs from Git",
     "attachments": [{"color": "#d69e2e", "fallback": <text>, "title": "DriftDetected shop/web",
                      "text": <summary>, "fields": [{"title": "Revision", "value": "3f2c…",
                      "short": true}, …one per detail…], "footer": "tether", "ts": 1746100800}]}

``text`` alone is a complete message (notifications, clients without attachments); the attachment
carries the colour of the severity and the details. Text is escaped for Slack's markup (``&``,
``<``, ``>``) so summaries cannot form links or mentions.
"""

from __future__ import annotations

from typing import Any

from tether.notify.alert import ERROR, INFO, WARNING, Alert

COLOURS = {INFO: "#2f855a", WARNING: "#d69e2e", ERROR: "#c53030"}


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The incoming-webhook body for ``alert``."""
    where = f"{alert.namespace}/{alert.app}" if alert.namespace else alert.app
    title = f"{alert.event} {where}"
    text = f"[{alert.severity}] {title}: {alert.summary}"
    fields = []
    if alert.revision:
        fields.append({"title": "Revision", "value": _escape(alert.revision), "short": True})
    fields += [
        {"title": _escape(key), "value": _escape(value), "short": len(value) <= 40}
        for key, value in alert.details.items()
    ]
    attachment = {
        "color": COLOURS[alert.severity],
        "fallback": _escape(text),
        "title": _escape(title),
        "text": _escape(alert.summary),
        "fields": fields,
        "footer": "tether",
        "ts": int(alert.timestamp.timestamp()),
    }
    return {"text": _escape(text), "attachments": [attachment]}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
