"""Fetching Helm charts from a Helm HTTP repository, verified against its index and cached.

    fetch_chart(ChartSource(repository, name, version_range)) -> ChartArtifact(path, version, digest)

A Helm repository is a base URL serving ``index.yaml``: for each chart name, its versions, each
with the URLs of its packaged ``.tgz`` and that package's SHA-256 ``digest``. One fetch:

1. reads ``index.yaml`` (always, so a new version in range is seen; at most ``MAX_INDEX`` bytes,
   read with Tether's YAML reader and its limits);
2. picks the highest version the semver range allows (``tether.source.semver``, the range
   syntax of ``semver:`` refs; pre-releases only when the range names one);
3. takes the package from the cache when one with that digest is there (checked again), or
   downloads it (at most ``MAX_CHART`` bytes) and keeps it only if its SHA-256 is the index's
   digest. A version without a digest in the index is refused: nothing unverified is rendered.

A repository written ``oci://HOST/PATH`` is an OCI registry: the chart ``oci://HOST/PATH/NAME``
is fetched by ``tether.source.oci`` (tags for versions, the manifest digest verified).

Basic auth (a username and a password file, re-read on every fetch, or a Secret's credentials) is
sent to the repository's own origin only, never to another host a chart URL or a redirect points
to. A CA bundle can be given for a repository with a private CA. Like the rest of
``tether.source``, HTTP goes through ``urllib.request`` (httpx is ``tether.cluster``'s). Errors
are ``SourceError`` naming the repository (credentials masked), the chart and what to do; a
refused login names where the credentials came from (the password file, the Secret), never them.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tether.core.kubeyaml import YamlLimits, YamlProblem, load_all
from tether.core.paths import cache_root
from tether.errors import SourceError
from tether.source.semver import RangeError, parse_range, versions
from tether.source.urls import mask_url

MAX_INDEX = 64 * 1024 * 1024
MAX_CHART = 32 * 1024 * 1024
_INDEX_LIMITS = YamlLimits(max_document_chars=MAX_INDEX, max_documents=1, max_nodes=20_000_000)
_TIMEOUT = 60.0
_CHUNK = 1024 * 1024
_DIGEST = re.compile(r"^(?:sha256:)?(?P<hex>[0-9a-f]{64})$")
_SHOWN = 6


class ChartAuth(Protocol):
    """How a request to a Helm repository (``header``) or an OCI registry (``current``, a
    ``CredentialProvider``) authenticates, and where its credentials come from (``origin``, named
    when the server refuses them; never their value)."""

    def header(self) -> str: ...

    def current(self) -> tuple[str, str]: ...

    @property
    def origin(self) -> str: ...


@dataclass(frozen=True)
class ChartCredentials:
    """Credentials held in memory (the agent's, read from a HelmSource's Secret on each fetch):
    a username and password for basic auth, or a bearer token when there is no username;
    ``origin`` says where they were read ("Secret team-a/repo-login")."""

    username: str
    password: str = field(repr=False)
    origin: str = "the credentials given"

    def current(self) -> tuple[str, str]:
        return self.username, self.password

    def header(self) -> str:
        if not self.username:
            return f"Bearer {self.password}"
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclass(frozen=True)
class ChartRepositoryAuth:
    """A username and the file holding the password (re-read on every fetch, so it rotates)."""

    username: str
    password_file: Path

    def current(self) -> tuple[str, str]:
        """The username and the password as the file holds it now (a ``CredentialProvider``)."""
        try:
            password = self.password_file.read_text().strip()
        except OSError as error:
            raise SourceError(
                f"cannot read the Helm repository password file {self.password_file}: "
                f"{error.strerror or error}"
            ) from None
        return self.username, password

    def header(self) -> str:
        username, password = self.current()
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return f"Basic {token}"

    @property
    def origin(self) -> str:
        return f"password file {self.password_file}"


@dataclass(frozen=True)
class ChartSource:
    """A chart in a Helm repository: the repository's base URL, the chart's name, a semver range
    (``None`` or ``*`` for the highest release), and how to connect."""

    repository: str
    name: str
    version: str | None = None
    auth: ChartAuth | None = None
    ca_file: Path | None = None
    plain_http: bool = False  # oci:// only: a registry served over http (loopback, tests)
    allowed_digests: tuple[str, ...] = ()  # oci:// only: the manifest digests accepted

    @property
    def display(self) -> str:
        return f"{mask_url(self.repository)} chart {self.name!r}"


@dataclass(frozen=True)
class ChartArtifact:
    """A verified chart package: ``path`` (a ``.tgz`` in the cache), the ``version`` picked, its
    SHA-256 ``digest`` (``sha256:…``), and the ``url`` it came from (credentials masked)."""

    name: str
    version: str
    digest: str
    path: Path
    url: str


def chart_cache_dir() -> Path:
    """``charts/`` under Tether's cache: one ``sha256-<hex>.tgz`` per package."""
    return cache_root() / "charts"


def fetch_chart(source: ChartSource, cache_dir: Path | None = None) -> ChartArtifact:
    """The package of the highest version of ``source.name`` in ``source.version``'s range,
    from the cache or the repository, verified against the digest in the repository's index.
    An ``oci://`` repository is an OCI registry: see ``tether.source.oci.fetch_oci_chart``."""
    if source.repository.startswith("oci://"):
        return _fetch_from_registry(source, cache_dir)
    _check_url(source.repository, source)
    opener = _opener(source)
    index = _read_index(source, opener)
    version, entry = _pick(source, index)
    digest = _digest_of(source, version, entry)
    url = _chart_url(source, version, entry)
    directory = cache_dir or chart_cache_dir()
    cached = directory / f"sha256-{digest}.tgz"
    if not (cached.is_file() and _sha256(cached.read_bytes()) == digest):
        data = _get(opener, url, source, MAX_CHART, f"{source.name} {version}")
        if _sha256(data) != digest:
            raise SourceError(
                f"{source.display} version {version}: the package downloaded from "
                f"{mask_url(url)} has SHA-256 {_sha256(data)}, but the repository's index says "
                f"{digest}; nothing was rendered. The package or the index was changed: "
                "re-publish the index (helm repo index) or check who serves the repository"
            )
        store_package(directory, cached, data)
    return ChartArtifact(source.name, version, f"sha256:{digest}", cached, mask_url(url))


def _fetch_from_registry(source: ChartSource, cache_dir: Path | None) -> ChartArtifact:
    from tether.source.oci import OCIAuth, fetch_oci_chart

    auth = OCIAuth(source.auth, source.ca_file, source.plain_http)
    reference = source.repository.rstrip("/") + "/" + source.name
    return fetch_oci_chart(
        reference, source.version, auth, cache_dir, allowed_digests=source.allowed_digests
    )


def _check_url(url: str, source: ChartSource) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise SourceError(
            f"{source.display}: {mask_url(url)} is not an http(s) URL; a Helm repository is "
            "served over HTTP, an OCI registry as oci://HOST/PATH (docs/helm.md)"
        )


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower() + f":{parts.port or ''}"


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, dropping the Authorization header when one leaves the origin."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _opener(source: ChartSource) -> urllib.request.OpenerDirector:
    try:
        context = ssl.create_default_context(
            cafile=str(source.ca_file) if source.ca_file is not None else None
        )
    except (ssl.SSLError, ValueError) as error:
        raise SourceError(
            f"{source.display}: the CA bundle is not valid PEM ({type(error).__name__}); give "
            "the repository's CA certificate(s) in PEM form"
        ) from None
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _SameOriginRedirects()
    )


def _plain(url: str) -> tuple[str, str | None]:
    """``url`` without credentials, and a basic-auth header for the ones it carried."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    userinfo = (
        f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    )
    header = "Basic " + base64.b64encode(userinfo.encode()).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), header


def _get(
    opener: urllib.request.OpenerDirector, url: str, source: ChartSource, limit: int, what: str
) -> bytes:
    """The body at ``url`` (at most ``limit`` bytes); credentials only for the repository."""
    location, header = _plain(url)
    same_origin = _origin(url) == _origin(source.repository)
    if header is None and same_origin:
        header = _plain(source.repository)[1]
    from_where = "the repository URL" if header is not None else ""  # named if refused
    if header is None and same_origin and source.auth is not None:
        header, from_where = source.auth.header(), source.auth.origin
    request = urllib.request.Request(location, headers={"User-Agent": "tether"})  # noqa: S310
    if header is not None:
        request.add_unredirected_header("Authorization", header)
    shown = mask_url(url)
    try:
        with opener.open(request, timeout=_TIMEOUT) as response:
            data = bytes(response.read(limit + 1))
    except urllib.error.HTTPError as error:
        hint = (
            _refused_hint(from_where)
            if error.code in (401, 403)
            else "check the repository URL and the chart name"
        )
        raise SourceError(
            f"{source.display}: GET {shown} answered HTTP {error.code}; {hint}"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise SourceError(
            f"{source.display}: cannot read {shown} ({reason}); check the URL, the network and, "
            "for https, the CA bundle"
        ) from None
    if len(data) > limit:
        raise SourceError(
            f"{source.display}: {what} at {shown} is larger than {limit // 1024**2} MiB; refused"
        )
    return data


def _refused_hint(from_where: str) -> str:
    """What to do when the repository refuses a request sent with the credentials from
    ``from_where`` (a password file, a Secret, the URL; '' when none were sent)."""
    if not from_where:
        return (
            "the repository requires a login: give a username and a password file, or a Secret "
            "(HelmSource spec.secretRef)"
        )
    return f"the repository refused the credentials from {from_where}: correct them there"


def _read_index(source: ChartSource, opener: urllib.request.OpenerDirector) -> dict[str, Any]:
    url = source.repository.rstrip("/") + "/index.yaml"
    data = _get(opener, url, source, MAX_INDEX, "index.yaml")
    label = f"{mask_url(url)}"
    try:
        documents = load_all(data.decode("utf-8-sig"), _INDEX_LIMITS)
    except UnicodeDecodeError:
        raise SourceError(f"{source.display}: {label} is not UTF-8 text") from None
    except YamlProblem as problem:
        raise SourceError(f"{source.display}: {problem.at(label)}") from None
    index = documents[0].data if documents else None
    if not isinstance(index, dict) or not isinstance(index.get("entries"), dict):
        raise SourceError(
            f"{source.display}: {label} is not a Helm repository index (no 'entries'); check "
            "the repository URL"
        )
    return index


def _pick(source: ChartSource, index: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    entries = index["entries"].get(source.name)
    if not isinstance(entries, list) or not entries:
        names = sorted(str(name) for name in index["entries"])
        shown = ", ".join(names[:_SHOWN]) + (", …" if len(names) > _SHOWN else "")
        raise SourceError(
            f"{source.display}: the repository has no such chart (charts: {shown or 'none'})"
        )
    by_version = {
        str(entry.get("version")): entry
        for entry in entries
        if isinstance(entry, dict) and entry.get("version") is not None
    }
    text = source.version or "*"
    try:
        wanted = parse_range(text)
    except RangeError as error:
        raise SourceError(
            f"{source.display}: invalid version range {text!r}: {error}; write e.g. '1.4.2', "
            "'^1.4', '~1.4' or '>=1.2.0 <2.0.0'"
        ) from None
    version = wanted.highest(by_version)
    if version is None:
        nearest = wanted.nearest(by_version) or [tag for tag, _ in versions(by_version)][:_SHOWN]
        raise SourceError(
            f"{source.display}: no version matches {text!r} "
            f"(versions: {', '.join(nearest) or 'none'})"
        )
    return version, by_version[version]


def _digest_of(source: ChartSource, version: str, entry: dict[str, Any]) -> str:
    match = _DIGEST.match(str(entry.get("digest") or "").lower())
    if match is None:
        raise SourceError(
            f"{source.display} version {version}: the repository's index gives no SHA-256 digest "
            "for the package, so it cannot be verified; re-create the index with "
            "`helm repo index`"
        )
    return match["hex"]


def _chart_url(source: ChartSource, version: str, entry: dict[str, Any]) -> str:
    urls = entry.get("urls")
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        raise SourceError(f"{source.display} version {version}: the index lists no package URL")
    url = urllib.parse.urljoin(source.repository.rstrip("/") + "/", urls[0])
    _check_url(url, source)
    return url


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_package(directory: Path, target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (a concurrent reader sees all of it or none)."""
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".chart-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise SourceError(f"cannot write the chart cache {directory}: {error.strerror}") from None
