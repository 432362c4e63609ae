"""Push webhooks from Git servers: signature checks and repository URLs per provider.

GitHub (``X-Hub-Signature-256: sha256=<hmac>``), Gitea (``X-Gitea-Signature: <hmac>``),
GitLab (``X-Gitlab-Token: <shared secret>``) and a generic form (``X-Tether-Signature:
sha256=<hmac>``, body ``{"url": …}``). Unsigned or wrongly signed calls are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

PROVIDERS = ("github", "gitlab", "gitea", "generic")


def _hmac_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verified(provider: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
    """True when the call carries a valid signature (or token) for ``provider``."""
    expected = _hmac_hex(secret, body)
    if provider == "github":
        return hmac.compare_digest(headers.get("X-Hub-Signature-256", ""), f"sha256={expected}")
    if provider == "gitea":
        return hmac.compare_digest(headers.get("X-Gitea-Signature", ""), expected)
    if provider == "gitlab":
        return hmac.compare_digest(headers.get("X-Gitlab-Token", "").encode(), secret)
    if provider == "generic":
        return hmac.compare_digest(headers.get("X-Tether-Signature", ""), f"sha256={expected}")
    return False


def repository_urls(provider: str, body: bytes) -> set[str]:
    """Every URL the payload gives for the pushed repository."""
    payload: dict[str, Any] = json.loads(body or b"{}")
    if provider == "generic":
        return {str(payload.get("url", ""))} - {""}
    repo = payload.get("project" if provider == "gitlab" else "repository") or {}
    keys = (
        ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")
        if provider == "gitlab"
        else ("clone_url", "ssh_url", "html_url", "git_url")
    )
    return {str(repo[k]) for k in keys if repo.get(k)}


def normalise(url: str) -> str:
    """A comparable form: no scheme, credentials, ``.git`` or trailing slash; scp form unfolded."""
    text = url.strip()
    scp = re.match(r"^[\w.-]+@([\w.-]+):(.+)$", text)
    if scp and "://" not in text:
        text = f"{scp.group(1)}/{scp.group(2)}"
    text = re.sub(r"^[a-z+]+://", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^[^@/]*@", "", text)
    text = re.sub(r"^([^/:]+):\d+/", r"\1/", text)
    text = text.rstrip("/")
    text = text.removesuffix(".git")
    host, _, path = text.partition("/")
    return f"{host.lower()}/{path}" if path else host.lower()
