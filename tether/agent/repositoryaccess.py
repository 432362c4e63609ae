"""How the agent reaches a HelmSource's repository or an OCISource's registry: credentials and CA
bundle read from the Secrets the source names, in the source's own namespace only, and its URL
judged by the same tenant rules as a GitSource's (``FetchRules.tenant()``, decision 0013).

The CA bundle is written to the namespace's own directory in Tether's cache (a certificate is
not a secret; the HTTP clients take a file), under the hash of its content, written to a
temporary file and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tether.agent.secretdata import decoded, get_secret
from tether.cluster.client import KubeClient
from tether.core.paths import cache_root
from tether.errors import SourceError
from tether.source import ChartCredentials, FetchRules

CA_KEY = "ca.crt"
CREDENTIAL_KEYS = "keys username and password (basic auth), or token (a bearer token)"


class NamesAccess(Protocol):
    """A source spec that names its server, Secrets and plain http (HelmSource, OCISource)."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def secret_name(self) -> str: ...

    @property
    def cert_secret_name(self) -> str: ...

    @property
    def insecure(self) -> bool: ...


@dataclass(frozen=True)
class SourceAccess:
    """What one source names about reaching its server (see ``HelmSourceSpec``/``OCISourceSpec``)."""

    kind: str
    namespace: str
    name: str
    url: str
    secret_name: str = ""
    cert_secret_name: str = ""
    insecure: bool = False  # an oci:// registry over plain http

    @classmethod
    def of(cls, kind: str, spec: NamesAccess) -> SourceAccess:
        return cls(
            kind,
            spec.namespace,
            spec.name,
            spec.url,
            spec.secret_name,
            spec.cert_secret_name,
            spec.insecure,
        )

    @property
    def about(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class RepositoryAccess:
    """Credentials (None: anonymous), a CA file (None: the system's) and plain http or not."""

    credentials: ChartCredentials | None = field(default=None, repr=False)
    ca_file: Path | None = None
    plain_http: bool = False


async def repository_access(
    client: KubeClient, rules: FetchRules, source: SourceAccess
) -> RepositoryAccess:
    """Read ``source``'s Secrets (its own namespace only) and check its URL against ``rules``."""
    credentials = None
    if source.secret_name:
        data = decoded(await _secret(client, source, source.secret_name, "secretRef"))
        password = data.get("password") or data.get("token", "")
        if not password:
            raise SourceError(
                f"{source.about}: Secret {source.secret_name!r} holds no credentials; give it "
                f"{CREDENTIAL_KEYS}"
            )
        username = data.get("username", "") if data.get("password") else ""
        origin = f"Secret {source.namespace}/{source.secret_name} (spec.secretRef)"
        credentials = ChartCredentials(username, password, origin)
    url = source.url
    if source.insecure and url.startswith("oci://"):
        url = "http://" + url.removeprefix("oci://")
    rules.check_http_repository(url, credentials is not None, source.about)
    ca_file = None
    if source.cert_secret_name:
        data = decoded(await _secret(client, source, source.cert_secret_name, "certSecretRef"))
        if not data.get(CA_KEY):
            raise SourceError(
                f"{source.about}: Secret {source.cert_secret_name!r} (certSecretRef) has no key "
                f"{CA_KEY}; put the server's CA bundle (PEM) there"
            )
        ca_file = _ca_file(source.namespace, data[CA_KEY])
    return RepositoryAccess(credentials, ca_file, source.insecure)


async def _secret(
    client: KubeClient, source: SourceAccess, name: str, field_name: str
) -> dict[str, Any]:
    secret = await get_secret(client, source.namespace, name)
    if secret is None:
        raise SourceError(
            f"{source.about}: Secret {name!r} ({field_name}) not found in namespace "
            f"{source.namespace}; create it or fix spec.{field_name}"
        )
    return secret


def _ca_file(namespace: str, pem: str) -> Path:
    """The CA bundle ``pem`` as a file in ``namespace``'s own cache directory."""
    directory = cache_root() / "ca" / "tenants" / namespace
    target = directory / f"{hashlib.sha256(pem.encode()).hexdigest()[:32]}.pem"
    if target.is_file():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".ca-", dir=directory)
        with os.fdopen(handle, "w") as file:
            file.write(pem)
        os.replace(temporary, target)
    except OSError as error:
        raise SourceError(f"cannot write the CA bundle to {directory}: {error.strerror}") from None
    return target
