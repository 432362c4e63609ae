"""An OCI distribution client over httpx: manifests and blobs, digest-verified, with auth.

    with RegistryClient(reference, auth) as registry:
        body, media_type, digest = registry.manifest("1.4.2")     # sha256 of the bytes checked
        data = registry.blob(descriptor)                           # sha256 and size checked
        registry.tags()                                            # every tag, all pages
        registry.push_blob(data); registry.push_manifest("1.4.2", body, media_type)

What is fetched is verified: a manifest's bytes must hash to the digest asked for (or, for a
tag, to the ``Docker-Content-Digest`` the registry sends, when it sends one), a blob's bytes to
its descriptor's digest and size. Nothing unverified is returned.

Authentication follows the registry's challenge on a 401 (``WWW-Authenticate``):

- ``Basic``: the username and password are sent on the retry;
- ``Bearer realm=…,service=…,scope=…`` (the Docker token protocol, what cloud registries use):
  a token is asked for at ``realm`` (with the credentials, or anonymously without), then sent as
  ``Authorization: Bearer``. Tokens are kept per scope for the life of the client.

Credentials are asked of the ``CredentialProvider`` on every client (a password file is read
again, a Secret's value is current) and sent only to the registry's own host: to a token realm
only when it is on that host or listed in ``OCIAuth.token_hosts``; never on a redirect to
another origin (httpx drops ``Authorization`` there; blob downloads are often redirected to
object storage). Errors are ``SourceError`` naming the registry URL and the reference and
saying what to do; no message holds a password or a token.

httpx runs with ``trust_env=False``: no ``.netrc`` credentials or proxy settings from the
environment are used, so nothing but the given credentials is ever sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tether.errors import SourceError
from tether.source.credentials import CredentialProvider, credentials_origin
from tether.source.oci_reference import DIGEST, OCIReference

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MAX_MANIFEST = 4 * 1024 * 1024
_TIMEOUT = 60.0
_MAX_ERROR = 200
_MAX_TOKEN_ANSWER = 1024 * 1024
_MAX_TAG_PAGES = 100
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class OCIAuth:
    """How to connect to a registry.

    ``credentials``: a username and password (or token) asked for on every fetch, e.g.
    ``TokenFile(path, username)`` (a password file) or ``BasicAuth(user, password)`` (a Secret).
    ``ca_file``: a PEM bundle for a registry with a private CA. ``plain_http``: talk http
    instead of https (a registry on loopback in tests). ``token_hosts``: other hosts that may
    receive the credentials when a registry sends its clients there for a token.
    """

    credentials: CredentialProvider | None = None
    ca_file: Path | None = None
    plain_http: bool = False
    token_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Descriptor:
    """A blob (or manifest) named by a manifest: its media type, digest and size."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, value: Any, where: str) -> Descriptor:
        if not isinstance(value, dict):
            raise SourceError(f"{where}: a descriptor is not an object")
        digest, size = value.get("digest"), value.get("size")
        if not isinstance(digest, str) or not DIGEST.match(digest):
            raise SourceError(f"{where}: descriptor digest {digest!r} is not a sha256 digest")
        if not isinstance(size, int) or size < 0:
            raise SourceError(f"{where}: descriptor of {digest} has no valid size")
        annotations = value.get("annotations") or {}
        return cls(
            str(value.get("mediaType") or ""),
            digest,
            size,
            {str(k): str(v) for k, v in annotations.items()}
            if isinstance(annotations, dict)
            else {},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Challenge:
    scheme: str
    params: dict[str, str]


class RegistryClient:
    """One connection to the registry of ``reference``, for its repository."""

    def __init__(
        self, reference: OCIReference, auth: OCIAuth | None = None, timeout: float = _TIMEOUT
    ) -> None:
        self.reference = reference
        self.auth = auth or OCIAuth()
        scheme = "http" if self.auth.plain_http else "https"
        self.base = f"{scheme}://{reference.registry}"
        self._client = httpx.Client(
            timeout=timeout,
            trust_env=False,
            follow_redirects=True,
            verify=_tls_context(self.auth.ca_file),
            headers={"User-Agent": "tether"},
        )
        self._basic: tuple[str, str] | None = None
        self._bearer: dict[str, str] = {}

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._client.close()

    @property
    def _where(self) -> str:
        return f"registry {self.base} ({self.reference.display})"

    # -- reading -----------------------------------------------------------------------------

    def manifest(self, reference: str, accept: tuple[str, ...] = ()) -> tuple[bytes, str, str]:
        """The manifest ``reference`` (a tag or a digest) names: its bytes, media type and
        digest, the bytes verified against the digest."""
        types = accept or (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST)
        path = f"/v2/{self.reference.repository}/manifests/{reference}"
        response = self._send("GET", path, "pull", headers={"Accept": ", ".join(types)})
        self._expect(response, (200,), f"manifest {reference}")
        body = response.content
        digest = sha256_digest(body)
        expected = (
            reference
            if DIGEST.match(reference)
            else response.headers.get("Docker-Content-Digest", "")
        )
        if expected and expected != digest:
            raise SourceError(
                f"{self._where}: the manifest of {reference} hashes to {digest}, not "
                f"{expected}; refused (nothing was applied). The registry or something between "
                "it and Tether changed the manifest"
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return body, media_type, digest

    def blob(self, descriptor: Descriptor, limit: int) -> bytes:
        """The blob ``descriptor`` names (at most ``limit`` bytes), verified."""
        if descriptor.size > limit:
            raise SourceError(
                f"{self._where}: blob {descriptor.digest} is {descriptor.size} bytes, more than "
                f"the {limit // 1024**2} MiB allowed; refused"
            )
        path = f"/v2/{self.reference.repository}/blobs/{descriptor.digest}"
        response = self._send("GET", path, "pull", limit=descriptor.size)
        self._expect(response, (200,), f"blob {descriptor.digest}")
        data = response.content
        actual = sha256_digest(data)
        if actual != descriptor.digest or len(data) != descriptor.size:
            raise SourceError(
                f"{self._where}: blob {descriptor.digest} arrived with digest {actual} and "
                f"{len(data)} bytes (expected {descriptor.size}); refused, nothing was applied. "
                "The stored blob is corrupt or was changed: push the artifact again"
            )
        return data

    def tags(self) -> list[str]:
        """Every tag of the repository (all pages of ``/tags/list``)."""
        tags: list[str] = []
        path: str | None = f"/v2/{self.reference.repository}/tags/list?n=1000"
        for _ in range(_MAX_TAG_PAGES):
            if path is None:
                return tags
            response = self._send("GET", path, "pull")
            if response.status_code == 404:
                raise SourceError(
                    f"{self._where}: the repository does not exist (no tags); check the "
                    "reference, or push to it first"
                )
            self._expect(response, (200,), "the tag list")
            try:
                listed = response.json().get("tags") or []
            except (ValueError, AttributeError):
                raise SourceError(f"{self._where}: the tag list is not JSON") from None
            tags += [str(tag) for tag in listed]
            path = _next_page(response.headers.get("Link", ""))
        return tags

    # -- writing -----------------------------------------------------------------------------

    def push_blob(self, data: bytes) -> Descriptor:
        """Upload ``data`` unless the registry has it; its descriptor (without media type)."""
        digest = sha256_digest(data)
        descriptor = Descriptor("", digest, len(data))
        head = self._send("HEAD", f"/v2/{self.reference.repository}/blobs/{digest}", "pull,push")
        if head.status_code == 200:
            return descriptor
        start = self._send("POST", f"/v2/{self.reference.repository}/blobs/uploads/", "pull,push")
        self._expect(start, (202,), "a blob upload")
        location = start.headers.get("Location", "")
        target = urllib.parse.urljoin(self.base + "/", location)
        if _origin(target) != _origin(self.base):
            raise SourceError(
                f"{self._where}: the registry sent the upload of {digest} to another origin "
                f"({_origin(target)[1]}); Tether only uploads to the registry itself"
            )
        separator = "&" if "?" in target else "?"
        put = self._send(
            "PUT",
            f"{target}{separator}digest={urllib.parse.quote(digest)}",
            "pull,push",
            headers={"Content-Type": "application/octet-stream"},
            content=data,
        )
        self._expect(put, (201, 204), f"the upload of blob {digest}")
        return descriptor

    def push_manifest(self, tag: str, body: bytes, media_type: str) -> str:
        """Store the manifest under ``tag``; its digest (checked against the registry's)."""
        digest = sha256_digest(body)
        response = self._send(
            "PUT",
            f"/v2/{self.reference.repository}/manifests/{tag}",
            "pull,push",
            headers={"Content-Type": media_type},
            content=body,
        )
        self._expect(response, (201, 204), f"the manifest for tag {tag}")
        stored = response.headers.get("Docker-Content-Digest", digest)
        if stored != digest:
            raise SourceError(
                f"{self._where}: the registry stored the manifest as {stored}, but its bytes hash "
                f"to {digest}; the registry changed it"
            )
        return digest

    # -- HTTP and auth -----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        actions: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        limit: int = MAX_MANIFEST,
    ) -> httpx.Response:
        """The answer to ``method path`` (its body read, at most ``limit`` bytes), after
        following one auth challenge."""
        url = path if path.startswith(("http://", "https://")) else self.base + path
        scope = f"repository:{self.reference.repository}:{actions}"
        response = self._request(method, url, scope, headers, content, limit)
        if response.status_code != 401:
            return response
        challenge = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return response
        if challenge.scheme == "basic":
            self._basic = self._credentials(required=True)
        else:
            wanted = challenge.params.get("scope") or scope
            self._bearer[scope] = self._token(challenge, wanted)
        return self._request(method, url, scope, headers, content, limit)

    def _request(
        self,
        method: str,
        url: str,
        scope: str,
        headers: dict[str, str] | None,
        content: bytes | None,
        limit: int,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if _origin(url) == _origin(self.base):
            if scope in self._bearer:
                sent["Authorization"] = f"Bearer {self._bearer[scope]}"
            elif self._basic is not None:
                sent["Authorization"] = _basic_header(*self._basic)
        request = self._client.build_request(method, url, headers=sent, content=content)
        try:
            streamed = self._client.send(request, stream=True)
            try:
                return self._read(streamed, limit, f"{method} {_shown(url)}")
            finally:
                streamed.close()
        except httpx.TimeoutException:
            raise SourceError(
                f"{self._where}: {method} {_shown(url)} timed out; check that the registry is "
                "up and reachable"
            ) from None
        except httpx.HTTPError as error:
            raise SourceError(
                f"cannot reach {self._where}: {_reason(error)}; check that the registry is "
                "running at that address, the network and, for https, the CA file"
            ) from None

    def _read(self, response: httpx.Response, limit: int, what: str) -> httpx.Response:
        """``response`` with its body read in full, refused past ``limit`` bytes (a registry
        cannot make Tether hold more than the manifest or the descriptor announced)."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise SourceError(
                    f"{self._where}: {what} sent more than the {limit} bytes expected; refused"
                )
            chunks.append(chunk)
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=kept, content=b"".join(chunks), request=response.request
        )

    def _credentials(self, *, required: bool) -> tuple[str, str] | None:
        provider = self.auth.credentials
        if provider is None:
            if required:
                raise SourceError(
                    f"{self._where} requires a login: give a username and a password file "
                    "(or a Secret with them)"
                )
            return None
        return provider.current()

    def _token(self, challenge: _Challenge, scope: str) -> str:
        realm = challenge.params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"{self._where}: the token realm {realm!r} is not an http(s) URL")
        if parts.scheme == "http" and not self.auth.plain_http:
            raise SourceError(
                f"{self._where}: the token service {_shown(realm)} is plain http; Tether only "
                "asks an https token service for tokens"
            )
        credentials = self._credentials(required=False)
        if credentials is not None and not self._may_receive_credentials(parts.hostname):
            raise SourceError(
                f"{self._where}: the registry sends clients to {parts.hostname} for tokens, "
                "which is not the registry's host; Tether sends credentials there only when "
                "that host is listed as a token host of the registry"
            )
        query = {"scope": scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        headers = {"Authorization": _basic_header(*credentials)} if credentials else {}
        request = self._client.build_request("GET", realm, params=query, headers=headers)
        try:
            streamed = self._client.send(request, stream=True)
            try:
                response = self._read(streamed, _MAX_TOKEN_ANSWER, "the token request")
            finally:
                streamed.close()
        except httpx.HTTPError as error:
            raise SourceError(
                f"cannot reach the token service {_shown(realm)} of {self._where}: {_reason(error)}"
            ) from None
        if response.status_code in (401, 403):
            raise SourceError(
                f"the token service {_shown(realm)} of {self._where} refused the login "
                f"(HTTP {response.status_code}); check the username and the password"
            )
        if response.status_code != 200:
            raise SourceError(
                f"the token service {_shown(realm)} of {self._where} answered HTTP "
                f"{response.status_code}; try again later"
            )
        try:
            answer = response.json()
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise SourceError(
                f"the token service {_shown(realm)} of {self._where} answered without a token"
            )
        return token

    def _may_receive_credentials(self, host: str) -> bool:
        registry_host = urllib.parse.urlsplit(self.base).hostname or ""
        return host.lower() == registry_host.lower() or host.lower() in {
            h.lower() for h in self.auth.token_hosts
        }

    def _refused_hint(self) -> str:
        """What to do about a 401: where the refused credentials came from, or that none were sent."""
        if self.auth.credentials is None:
            return (
                "the registry requires a login: give a username and a password file "
                "(or a Secret with them)"
            )
        origin = credentials_origin(self.auth.credentials)
        return "the registry refused the credentials" + (
            f" from {origin}: check the username and the password there"
            if origin
            else ": check the username and the password"
        )

    def _expect(self, response: httpx.Response, codes: tuple[int, ...], what: str) -> None:
        if response.status_code in codes:
            return
        status = response.status_code
        detail = _registry_errors(response)
        if status == 401:
            hint = self._refused_hint()
        elif status == 403:
            hint = "the credentials are valid but may not do this: check the account's rights"
        elif status == 404:
            hint = "it does not exist: check the repository, the tag or the digest"
        else:
            hint = "try again later, or check the registry's logs"
        raise SourceError(
            f"{self._where}: {what} answered HTTP {status}{f' ({detail})' if detail else ''}; "
            f"{hint}"
        )


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trust store, or only ``ca_file`` when one is given (a private CA)."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as error:
        raise SourceError(f"cannot read the CA file {ca_file}: {error}") from None


def _parse_challenge(header: str) -> _Challenge | None:
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in ("basic", "bearer"):
        return None
    return _Challenge(scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest)))


def _basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, f"{(parts.hostname or '').lower()}:{parts.port or default}"


def _shown(url: str) -> str:
    """``url`` without its query (which may carry an upload session or a scope)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(query="", fragment=""))


def _reason(error: httpx.HTTPError) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())[:_MAX_ERROR]


def _registry_errors(response: httpx.Response) -> str:
    """The registry's own error codes and messages (distribution spec error body), short."""
    try:
        errors = json.loads(response.content[:65536]).get("errors") or []
    except (ValueError, AttributeError):
        return ""
    shown = [
        f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
        for e in errors
        if isinstance(e, dict)
    ]
    return "; ".join(shown)[:_MAX_ERROR]


def _next_page(link: str) -> str | None:
    match = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", link)
    return match.group(1) if match else None
