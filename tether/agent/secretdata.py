"""Reading a Secret's decoded data for the agent (source credentials, trusted keys, alert URLs).
The values are credentials: callers never log or store them.

The agent reads Secrets as itself, and its install lets it read them only in its own namespace;
a team namespace whose objects name Secrets gets a RoleBinding of ``tether-agent-secrets``
(docs/tenancy.md). A refusal says so."""

from __future__ import annotations

import base64
from typing import Any

from tether.cluster.client import ApiError, KubeClient
from tether.errors import ClusterError

SECRETS_ROLE = "tether-agent-secrets"  # the ClusterRole `tether install` exports for this
_FORBIDDEN = 403


async def get_secret(client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """Secret ``namespace/name``, or None when it does not exist."""
    try:
        return await client.get(await client.resource("v1", "Secret"), namespace, name)
    except ApiError as error:
        if error.status != _FORBIDDEN:
            raise
        raise ClusterError(
            f"Secret {namespace}/{name}: the agent may not read Secrets in namespace "
            f"{namespace!r}; to let it, bind it ClusterRole {SECRETS_ROLE} there: `kubectl "
            f"create rolebinding {SECRETS_ROLE} -n {namespace} --clusterrole={SECRETS_ROLE} "
            "--serviceaccount=<agent namespace>:tether-agent` (see docs/tenancy.md)"
        ) from None


def decoded(secret: dict[str, Any] | None) -> dict[str, str]:
    """``{key: value}`` of a Secret object's base64 ``data``."""
    data = (secret or {}).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


async def read_secret(client: KubeClient, namespace: str, name: str) -> dict[str, str]:
    """Decoded data of Secret ``namespace/name``; empty when unnamed or missing."""
    return decoded(await get_secret(client, namespace, name)) if name else {}
