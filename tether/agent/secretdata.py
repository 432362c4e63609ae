"""Reading a Secret's decoded data for the agent (source credentials, trusted keys, alert URLs).
The values are credentials: callers never log or store them."""

from __future__ import annotations

import base64
from typing import Any

from tether.cluster.client import KubeClient


async def get_secret(client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    return await client.get(await client.resource("v1", "Secret"), namespace, name)


def decoded(secret: dict[str, Any] | None) -> dict[str, str]:
    """``{key: value}`` of a Secret object's base64 ``data``."""
    data = (secret or {}).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


async def read_secret(client: KubeClient, namespace: str, name: str) -> dict[str, str]:
    """Decoded data of Secret ``namespace/name``; empty when unnamed or missing."""
    return decoded(await get_secret(client, namespace, name)) if name else {}
