"""What one fetch may reach: which URL forms, where credentials may go, and whether git may use
the machine's own configuration and keys.

    FetchRules()         for someone fetching their own sources (the CLI): local paths and
                         file:// allowed, the user's gitconfig, credential helpers and ssh keys
                         used, credentials over plain http only to a loopback address
    FetchRules.tenant()  for sources written by others (the agent): https, http without
                         credentials, and ssh only; nothing of the machine's own configuration,
                         credential helpers or keys; every credential comes with the source

Whatever the rules, credentials travel only through the credential helper scoped to the
source's own scheme, host and port (``tether.source.git``), so a redirect to another host, or to
plain http, never gets them; and git may speak only the source's own protocol
(``GIT_ALLOW_PROTOCOL``), so no remote helper (``ext::``, ``fd::``) and no submodule or redirect
over another protocol runs. See ``docs/sources.md`` (Security) and decision 0013.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from tether.errors import SourceError
from tether.source.urls import Remote, mask_url, parse_remote

LOCAL_FLAG = "--allow-local-sources"
"""The agent flag that lets GitSources name local paths and ``file://`` URLs."""
LOOPBACK_HTTP_FLAG = "--allow-loopback-http-credentials"
"""The agent flag that lets credentials go over plain http to a loopback address (tests)."""


@dataclass(frozen=True)
class FetchRules:
    """See the module docstring. The defaults are the CLI's."""

    allow_local: bool = True
    loopback_http_credentials: bool = True
    machine_config: bool = True  # the machine's gitconfig, credential helpers, ssh keys and agent
    url_credentials: bool = True  # credentials written into the URL itself

    @classmethod
    def tenant(
        cls, *, allow_local: bool = False, loopback_http_credentials: bool = False
    ) -> FetchRules:
        """The agent's rules for a tenant's GitSource; the two flags are the operator's."""
        return cls(
            allow_local, loopback_http_credentials, machine_config=False, url_credentials=False
        )

    def check_url(self, remote: Remote, about: str) -> None:
        """Refuse credentials written into the URL when these rules want them elsewhere."""
        if self.url_credentials or (remote.username is None and not remote.secrets):
            return
        raise SourceError(
            f"cannot fetch {about}: the URL carries credentials, which everyone who can read the "
            "GitSource sees; put them in a Secret in its namespace (keys username and password), "
            "name it in spec.secretRef, and remove them from the URL"
        )

    def check(self, remote: Remote, about: str) -> None:
        """Refuse ``remote`` (with its credentials applied) when these rules do not allow it.

        ``about`` names the source in the message (its masked URL and ref).
        """
        if remote.local and not self.allow_local:
            raise SourceError(
                f"cannot fetch {about}: local paths and file:// URLs are refused here, as they "
                "would read the agent's own disk (other sources' caches among it); give an "
                f"https:// or ssh:// URL, or start the agent with {LOCAL_FLAG} on a "
                "single-tenant install"
            )
        if remote.scheme == "http" and remote.username is not None:
            self._check_plain_http(remote, about)

    def _check_plain_http(self, remote: Remote, about: str) -> None:
        loopback = is_loopback(remote.location)
        if loopback and self.loopback_http_credentials:
            return
        allowed_here = (
            f" (the agent sends them to a loopback address only with {LOOPBACK_HTTP_FLAG})"
            if loopback
            else ""
        )
        raise SourceError(
            f"cannot fetch {about}: refusing to send credentials over plain http, where anyone "
            f"on the path can read them{allowed_here}; use the https:// URL"
        )

    def check_http_repository(self, url: str, credentials: bool, about: str) -> None:
        """Refuse a Helm repository or OCI registry ``url`` (``https://``/``http://``; an
        ``oci://`` URL is judged as its ``https://`` form) that these rules do not allow: the same
        rules as a Git source's: no credentials written into the URL for a tenant, no
        ``credentials`` over plain http except to loopback under the operator's flag."""
        if url.startswith("oci://"):
            url = "https://" + url.removeprefix("oci://")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise SourceError(
                f"cannot fetch {about}: {mask_url(url)!r} is not an http(s) or oci:// URL; give the "
                "repository's https:// URL"
            )
        remote = parse_remote(url)
        self.check_url(remote, about)
        if credentials and remote.username is None:
            remote = replace(remote, username="")
        self.check(remote, about)

    def check_token_endpoint(self, source_url: str, api_url: str, about: str) -> None:
        """Refuse a GitHub App token endpoint (``api_url``, where the app's signed JWT is
        POSTed) on another host than the source's own: ``api.github.com`` for ``github.com``,
        the same host for GitHub Enterprise. A tenant's Secret could otherwise make the agent
        POST to any URL. https only, except to loopback under the same flag as credentials."""
        if self.url_credentials:
            return  # the CLI: the user's own Secret, the user's own choice
        api = urlsplit(api_url)
        source_host = (urlsplit(source_url).hostname or "").lower()
        allowed = {source_host, f"api.{source_host}"}
        plain_ok = api.scheme == "http" and self.loopback_http_credentials and is_loopback(api_url)
        if (api.hostname or "").lower() in allowed and (api.scheme == "https" or plain_ok):
            return
        raise SourceError(
            f"cannot fetch {about}: the GitHub App token endpoint (githubAppAPIURL) must be "
            f"https on the source's own host ({' or '.join(sorted(allowed))}); fix "
            "githubAppAPIURL in the GitSource's Secret"
        )

    @staticmethod
    def protocol(remote: Remote) -> str:
        """``GIT_ALLOW_PROTOCOL`` for a fetch of ``remote``: its own protocol only."""
        return remote.scheme


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
