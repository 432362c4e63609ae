"""Push webhooks from Git servers: signature checks, replays and repository URLs per provider.

GitHub (``X-Hub-Signature-256: sha256=<hmac>``), Gitea (``X-Gitea-Signature: <hmac>``),
GitLab (``X-Gitlab-Token: <shared secret>``) and a generic form (``X-Tether-Signature:
sha256=<hmac>``, body ``{"url": …}``). Unsigned or wrongly signed calls are refused; an empty
secret is refused at start-up (it would authenticate anyone who knows it is empty).

Nothing a caller sends can make a handler fail: headers are compared as bytes (a non-ASCII
signature is simply wrong), the body must be a JSON object (or GitHub's form-encoded
``payload=``) that Python's parser can nest, and every value read from it must be a string.
Anything else is a ``PayloadError``, which the server answers with 400.

A forge sends each delivery with an id it keeps when it retries or redelivers
(``DELIVERY_HEADERS``); ``Deliveries`` remembers the last ``capacity`` ids handled, so a retry
or a replayed call is answered without waking any source again. GitHub and Gitea do not sign
the id, so this stops redeliveries and naive replays; a fetch is idempotent in any case.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

PROVIDERS = ("github", "gitlab", "gitea", "generic")
DELIVERY_HEADERS = {
    "github": "X-GitHub-Delivery",
    "gitea": "X-Gitea-Delivery",
    "gitlab": "Idempotency-Key",  # GitLab 17.4+: the same key on every retry of one event
    "generic": "X-Tether-Delivery",
}
_MAX_DELIVERY_ID = 128


class PayloadError(ValueError):
    """A signed body Tether cannot read: not a JSON object, too deep, or not UTF-8."""


def refuse_empty(secret: bytes, where: str) -> bytes:
    """``secret`` itself; ValueError naming ``where`` when it is empty (or only whitespace)."""
    if not secret.strip():
        raise ValueError(
            f"the webhook secret in {where} is empty, which would let anyone trigger fetches: "
            "put a random secret in it (e.g. `openssl rand -hex 32`) and configure the same "
            "one at the Git server"
        )
    return secret


def _hmac_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> bytes:
    """A header's bytes as sent (aiohttp keeps undecodable bytes as surrogates)."""
    return headers.get(name, "").encode("utf-8", "surrogateescape")


def verified(provider: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
    """True when the call carries a valid signature (or token) for ``provider``."""
    if not secret:
        return False
    expected = _hmac_hex(secret, body).encode()
    if provider == "github":
        return hmac.compare_digest(_header(headers, "X-Hub-Signature-256"), b"sha256=" + expected)
    if provider == "gitea":
        return hmac.compare_digest(_header(headers, "X-Gitea-Signature"), expected)
    if provider == "gitlab":
        return hmac.compare_digest(_header(headers, "X-Gitlab-Token"), secret)
    if provider == "generic":
        return hmac.compare_digest(_header(headers, "X-Tether-Signature"), b"sha256=" + expected)
    return False


def delivery_id(provider: str, headers: Mapping[str, str]) -> str:
    """The forge's id of this delivery ("" when it sends none, or one Tether won't keep)."""
    value = headers.get(DELIVERY_HEADERS.get(provider, ""), "").strip()
    if not value or len(value) > _MAX_DELIVERY_ID or not value.isprintable():
        return ""
    return value


class Deliveries:
    """The ids of the last ``capacity`` deliveries handled, oldest forgotten first."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def seen(self, provider: str, delivery: str) -> bool:
        return bool(delivery) and (provider, delivery) in self._seen

    def remember(self, provider: str, delivery: str) -> None:
        if not delivery:
            return
        self._seen[(provider, delivery)] = None
        self._seen.move_to_end((provider, delivery))
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)


def payload(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    """The JSON object a push delivers (GitHub may send it form-encoded as ``payload=``)."""
    if content_type == "application/x-www-form-urlencoded" and body.startswith(b"payload="):
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise PayloadError("the form-encoded body cannot be read") from None
        body = (form.get("payload") or [""])[0].encode("utf-8", "surrogateescape")
    try:
        data = json.loads(body or b"{}")
    except RecursionError:
        raise PayloadError("the body nests too deep to be a push event") from None
    except ValueError:
        raise PayloadError("the body is not JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object")
    return data


def repository_urls(provider: str, body: bytes, content_type: str = "application/json") -> set[str]:
    """Every URL the payload gives for the pushed repository (``PayloadError`` when the body
    cannot be read)."""
    data = payload(body, content_type)
    if provider == "generic":
        return _strings([data.get("url")])
    repo = data.get("project" if provider == "gitlab" else "repository")
    if not isinstance(repo, dict):
        return set()
    keys = (
        ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")
        if provider == "gitlab"
        else ("clone_url", "ssh_url", "html_url", "git_url")
    )
    return _strings([repo.get(k) for k in keys])


def _strings(values: list[Any]) -> set[str]:
    return {v for v in values if isinstance(v, str) and v and len(v) <= 2048}


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
