"""Where alerts go: one ``ProviderSpec`` per receiver, as an ``AlertProvider`` object in Git says
once its secret references are resolved.

A spec is checked when it is built, so a Notifier never holds one it cannot use. Every message
names the provider and shows its URL masked (see :mod:`tether.notify.redact`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tether.errors import TetherError
from tether.notify.alert import AlertEvent
from tether.notify.redact import masked_url

WEBHOOK = "webhook"
SLACK = "slack"
ALERTMANAGER = "alertmanager"
PROVIDER_TYPES = (WEBHOOK, SLACK, ALERTMANAGER)


class AlertProviderError(TetherError):
    """An alert provider's spec is unusable (unknown type, bad URL, options it does not take)."""


@dataclass(frozen=True, repr=False)
class ProviderSpec:
    """One alert receiver.

    ``url`` is the full URL for ``webhook`` and ``slack``, and the base URL for ``alertmanager``
    (``/api/v2/alerts`` is appended). ``hmac_key`` (webhook only) signs each body. ``events``
    filters what is sent; ``headers`` are added to every request (e.g. ``Authorization``) and are
    treated as secrets; ``timeout`` bounds each attempt, in seconds.
    """

    name: str
    type: str
    url: str
    hmac_key: bytes | None = None
    events: frozenset[AlertEvent] = frozenset(AlertEvent)
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0

    def __post_init__(self) -> None:
        where = f"alert provider {self.name!r}"
        if not self.name:
            raise AlertProviderError(f"an alert provider of type {self.type!r} has no name")
        if self.type not in PROVIDER_TYPES:
            raise AlertProviderError(
                f"{where}: type {self.type!r} is not one of {', '.join(PROVIDER_TYPES)}"
            )
        try:
            parts = urlsplit(self.url)
            host = parts.hostname
        except ValueError:
            host = None
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            raise AlertProviderError(
                f"{where}: URL {self.display_url} is not an http(s) URL with a host"
            )
        if self.hmac_key is not None and self.type != WEBHOOK:
            raise AlertProviderError(
                f"{where}: only webhook providers sign their bodies; remove the HMAC key "
                f"from this {self.type} provider"
            )
        if self.hmac_key is not None and not self.hmac_key:
            raise AlertProviderError(f"{where}: the HMAC key is empty")
        if not self.timeout > 0:
            raise AlertProviderError(f"{where}: timeout must be positive, not {self.timeout}")
        try:
            events = frozenset(AlertEvent(event) for event in self.events)
        except ValueError as error:
            raise AlertProviderError(
                f"{where}: {error}; known events: {', '.join(AlertEvent)}"
            ) from None
        object.__setattr__(self, "events", events)

    @property
    def secret_path(self) -> bool:
        """Whether the URL's path is itself a credential (Slack-style incoming webhooks)."""
        return self.type == SLACK

    @property
    def display_url(self) -> str:
        """The URL as it may appear in messages and logs."""
        return masked_url(self.url, secret_path=self.secret_path)

    def __repr__(self) -> str:
        # The default repr would show the URL, the key and the headers.
        return (
            f"ProviderSpec(name={self.name!r}, type={self.type!r}, url={self.display_url!r}, "
            f"signed={self.hmac_key is not None}, events={sorted(self.events)!r}, "
            f"timeout={self.timeout})"
        )
