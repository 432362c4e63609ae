"""Which driver talks to a forge: chosen by its kind (``gitea``, ``github``, ``gitlab``), or
told from its URL when the kind is left out.

``forge_for`` is what the delivery layer calls with the forge settings of a source; it is the
one place that knows the drivers by name. A URL tells the kind only when it cannot be
anything else (github.com, gitlab.com, or an API path ``/api/v3``, ``/api/v4``, ``/api/v1``);
a self-hosted forge at a plain address needs its kind written down.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from tether.errors import ForgeError
from tether.forge.gitea import GiteaForge
from tether.forge.github import GitHubForge
from tether.forge.gitlab import GitLabForge
from tether.forge.interface import Forge, TokenProvider
from tether.forge.transport import ForgeSettings, plain_base_url

ForgeDriver = GiteaForge | GitHubForge | GitLabForge
"""Any of the drivers: each is a ``Forge`` and an async context manager that closes it."""
_DRIVERS: tuple[type[Forge], ...] = (GiteaForge, GitHubForge, GitLabForge)  # checked by mypy


class ForgeKind(enum.Enum):
    """The forges Tether has a driver for."""

    GITEA = "gitea"
    GITHUB = "github"
    GITLAB = "gitlab"


_KNOWN_HOSTS = {
    "github.com": ForgeKind.GITHUB,
    "api.github.com": ForgeKind.GITHUB,
    "gitlab.com": ForgeKind.GITLAB,
}
_API_PATHS = {
    "/api/v3": ForgeKind.GITHUB,
    "/api/v4": ForgeKind.GITLAB,
    "/api/v1": ForgeKind.GITEA,
}


def forge_kind(kind: str, base_url: str) -> ForgeKind:
    """The kind written down (any case), else the one ``base_url`` can only be."""
    written = kind.strip().lower()
    if written:
        try:
            return ForgeKind(written)
        except ValueError:
            raise ForgeError(
                f"forge kind {kind!r} (for {plain_base_url(base_url)}) is not one Tether knows; "
                f"write one of {', '.join(k.value for k in ForgeKind)}"
            ) from None
    plain = plain_base_url(base_url)
    parts = urlsplit(plain)
    by_host = _KNOWN_HOSTS.get((parts.hostname or "").lower())
    if by_host is not None:
        return by_host
    by_path = next((k for path, k in _API_PATHS.items() if parts.path.endswith(path)), None)
    if by_path is not None:
        return by_path
    raise ForgeError(
        f"cannot tell which forge runs at {plain}; write its kind: "
        f"{', '.join(k.value for k in ForgeKind)}"
    )


def forge_for(
    kind: str,
    base_url: str,
    credentials: TokenProvider,
    settings: ForgeSettings | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ForgeDriver:
    """The driver for the forge at ``base_url`` (``kind`` may be ``""`` when the URL tells it);
    use it as ``async with forge_for(…) as forge:`` or close it."""
    chosen = forge_kind(kind, base_url)
    if chosen is ForgeKind.GITHUB:
        return GitHubForge(base_url, credentials, settings, sleep=sleep)
    if chosen is ForgeKind.GITLAB:
        return GitLabForge(base_url, credentials, settings, sleep=sleep)
    if base_url.rstrip("/").endswith("/api/v1"):
        base_url = base_url.rstrip("/").removesuffix("/api/v1")
    return GiteaForge(base_url, credentials, settings, sleep=sleep)
