"""The generic webhook: Tether's own JSON schema, optionally signed with HMAC-SHA256.

Body (UTF-8 JSON, one object; ``details`` and ``revision`` may be empty)::

    {"version": "tether.dev/v1", "event": "DriftDetected", "app": "web", "namespace": "shop",
     "severity": "warning", "summary": "...", "revision": "3f2c…", "details": {"object": "…"},
     "timestamp": "2025-05-01T12:00:00.000Z"}

Headers: ``X-Tether-Event`` (the event), ``X-Tether-Delivery`` (a unique id, the same on every
retry of one delivery, so receivers can drop duplicates) and, when the provider has a key,
``X-Tether-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``. Receivers check it with
:func:`verify_signature` (or the same three lines in their own language) before parsing the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tether.notify.alert import Alert

SCHEMA_VERSION = "tether.dev/v1"
SIGNATURE_HEADER = "X-Tether-Signature"
EVENT_HEADER = "X-Tether-Event"
DELIVERY_HEADER = "X-Tether-Delivery"
_SIGNATURE_PREFIX = "sha256="


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The documented ``tether.dev/v1`` object for ``alert``."""
    return {
        "version": SCHEMA_VERSION,
        "event": str(alert.event),
        "app": alert.app,
        "namespace": alert.namespace,
        "severity": alert.severity,
        "summary": alert.summary,
        "revision": alert.revision,
        "details": dict(alert.details),
        "timestamp": alert.timestamp_text,
    }


def encode(payload: object) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are sent and signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(body: bytes, key: bytes) -> str:
    """The ``X-Tether-Signature`` value for ``body``: ``sha256=<hex digest>``."""
    return _SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str, key: bytes) -> bool:
    """Whether ``header`` (an ``X-Tether-Signature`` value) signs ``body`` with ``key``.

    Compares in constant time; a missing, malformed or differently-prefixed header is False.
    """
    if not header or not key or not header.startswith(_SIGNATURE_PREFIX):
        return False
    expected = sign(body, key)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().lower().encode("utf-8"))
