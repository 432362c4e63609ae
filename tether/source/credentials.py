"""Short-lived credentials for http(s) Git sources, asked for again on every fetch.

    CredentialProvider      anything with ``current() -> (username, token)``
    ├── BasicAuth           a username and password held in memory (the agent: from a Secret)
    ├── TokenFile           a token in a file, re-read on every call (rotated by someone else)
    └── GitHubApp           a GitHub App installation token, minted on demand and cached
    SshKey                  an ssh private key (and known hosts) for ssh URLs, e.g. from a Secret

``fetch(url, ref, credentials=provider)`` calls ``current()`` once per fetch and hands the pair
to git exactly as it hands over credentials written in the URL: through the credential helper and
an environment variable (``tether.source.git``), never on a command line, in the cache or in a
message. A rotated token is therefore picked up by the next fetch without a restart.

The one network call here, GitHub's "create an installation access token", uses
``urllib.request`` from the standard library: ``tether.source`` does not use httpx (only
``tether.cluster`` does). Errors are ``SourceError`` and never hold the JWT, the private key or
a token.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tether.errors import SourceError
from tether.source.urls import Remote, mask_text, mask_url

JWT_BACKDATE_SECONDS = 60
"""``iat`` is set this far in the past, so a GitHub clock slightly behind ours accepts the JWT."""
JWT_LIFETIME_SECONDS = 9 * 60
"""``exp`` is this far ahead; GitHub refuses JWTs that live longer than 10 minutes."""
REFRESH_MARGIN_SECONDS = 5 * 60
"""An installation token is replaced this long before its ``expires_at``."""

_GITHUB_ACCEPT = "application/vnd.github+json"
_GITHUB_API_VERSION = "2022-11-28"
_INSTALLATION_ID = re.compile(r"[0-9]{1,20}")
_MAX_DETAIL = 200
_MIN_SECRET_LEN = 4
_MAX_ANSWER = 1 << 16
_BAD_CHARACTERS = "\n\r\0"


class CredentialProvider(Protocol):
    """Gives the username and token to use for an http(s) Git remote, now."""

    def current(self) -> tuple[str, str]:
        """``(username, token)``; raises ``SourceError`` (without secrets) when there are none."""
        ...


def credentials_origin(provider: object) -> str:
    """Where ``provider``'s credentials come from, to name in an error message ("password file
    /etc/x", "Secret team-a/login"; never their value): its ``origin``, or '' when it has none."""
    origin = getattr(provider, "origin", "")
    return origin if isinstance(origin, str) else ""


class BasicAuth:
    """A username and password (or token) someone else read, e.g. from a Kubernetes Secret
    (``origin`` names it for error messages: "Secret team-a/login").

    Nothing is checked until ``fetch`` uses them; ``repr`` never shows the password.
    """

    def __init__(self, username: str, password: str, origin: str = "") -> None:
        self.username = username
        self._password = password
        self.origin = origin

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='***')"

    def current(self) -> tuple[str, str]:
        return self.username, self._password


class SshKey:
    """An ssh private key, and optionally the ``known_hosts`` lines to check the host against,
    for ssh URLs. ``fetch`` writes them to a private temporary directory for the fetch only;
    ``repr`` never shows the key."""

    def __init__(self, private_key: str, known_hosts: str = "") -> None:
        self.private_key = private_key if private_key.endswith("\n") else private_key + "\n"
        self.known_hosts = known_hosts

    def __repr__(self) -> str:
        return f"SshKey(private_key='***', known_hosts={bool(self.known_hosts)})"


class TokenFile:
    """A token kept in a file that something else rotates (a mounted Secret, a sidecar).

    The file is read on every ``current()`` call, so the token written last is the one used;
    surrounding whitespace is ignored. ``username`` is sent with it (``x-access-token`` suits
    GitHub; GitLab accepts any name with a project or deploy token, ``oauth2`` is customary).
    """

    def __init__(self, path: Path, username: str = "x-access-token") -> None:
        self.path = Path(path)
        self.username = username

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, username={self.username!r})"

    @property
    def origin(self) -> str:
        return f"token file {self.path}"

    def current(self) -> tuple[str, str]:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SourceError(
                f"token file {self.path} does not exist; mount the Secret holding the token "
                "there, or fix the path"
            ) from None
        except UnicodeDecodeError:
            raise SourceError(
                f"token file {self.path} is not UTF-8 text; write the token on its own in it"
            ) from None
        except OSError as error:
            raise SourceError(
                f"cannot read token file {self.path}: {error.strerror or error}; "
                "check its permissions"
            ) from None
        if not token:
            raise SourceError(
                f"token file {self.path} is empty; write the token into it (the file is read "
                "again on every fetch)"
            )
        if any(char in token for char in _BAD_CHARACTERS):
            raise SourceError(
                f"token file {self.path} holds more than one line; it must hold the token alone"
            )
        return self.username, token


class GitHubApp:
    """Installation access tokens of a GitHub App, minted when needed and cached until shortly
    before they expire.

    To mint one, an RS256 JWT (``iss`` = ``app_id``, valid from one minute ago for nine minutes)
    signed with the app's private key is sent to ``POST {api_url}/app/installations/{id}/
    access_tokens``. The token is reused until ``REFRESH_MARGIN_SECONDS`` before its
    ``expires_at`` (GitHub's tokens live one hour). ``clock`` gives the current Unix time.
    Safe to share between threads: one mint at a time.
    """

    def __init__(
        self,
        app_id: str,
        installation_id: str,
        private_key_pem: bytes,
        api_url: str = "https://api.github.com",
        clock: Callable[[], float] = time.time,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.app_id = str(app_id).strip()
        self.installation_id = str(installation_id).strip()
        self.api_url = api_url.rstrip("/")
        self.clock = clock
        self.timeout = timeout
        self._about = (
            f"GitHub App {self.app_id!r} (installation {self.installation_id!r}) "
            f"at {mask_url(self.api_url)}"
        )
        self._check_settings()
        self._key = self._load_key(private_key_pem)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return (
            f"GitHubApp(app_id={self.app_id!r}, installation_id={self.installation_id!r}, "
            f"api_url={mask_url(self.api_url)!r})"
        )

    def current(self) -> tuple[str, str]:
        with self._lock:
            if self._token is None or self.clock() >= self._refresh_at:
                self._token, expires_at = self._mint()
                self._refresh_at = expires_at - REFRESH_MARGIN_SECONDS
            return "x-access-token", self._token

    def _check_settings(self) -> None:
        if not self.app_id or any(char in self.app_id for char in _BAD_CHARACTERS):
            raise SourceError(f"{self._about}: the app ID is empty or not one line; set it")
        if not _INSTALLATION_ID.fullmatch(self.installation_id):
            raise SourceError(
                f"{self._about}: the installation ID must be a number (it is in the URL of the "
                "app's installation settings page)"
            )
        if not self.api_url.lower().startswith(("https://", "http://")):
            raise SourceError(f"{self._about}: the API URL must start with https://")

    def _load_key(self, pem: bytes) -> rsa.RSAPrivateKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SourceError(
                f"{self._about}: the private key is not an unencrypted PEM RSA private key; "
                "give the .pem file GitHub generated for the app"
            )
        return key

    def _jwt(self, now: float) -> str:
        """The app's RS256 JSON Web Token, valid for ``JWT_LIFETIME_SECONDS`` from ``now``."""
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {
            "iat": int(now) - JWT_BACKDATE_SECONDS,
            "exp": int(now) + JWT_LIFETIME_SECONDS,
            "iss": self.app_id,
        }
        signing_input = f"{_b64url_json(header)}.{_b64url_json(claims)}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _mint(self) -> tuple[str, float]:
        """A new installation token and its expiry (Unix time)."""
        jwt = self._jwt(self.clock())
        url = f"{self.api_url}/app/installations/{self.installation_id}/access_tokens"
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s)
            url,
            data=b"",
            method="POST",
            headers={
                "Authorization": f"Bearer {jwt}",
                "Accept": _GITHUB_ACCEPT,
                "X-GitHub-Api-Version": _GITHUB_API_VERSION,
                "User-Agent": "tether",
            },
        )
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                body = response.read(_MAX_ANSWER)
        except urllib.error.HTTPError as error:
            raise SourceError(self._refused(error, jwt)) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise SourceError(
                    f"timed out after {self.timeout:g}s asking {self._about} for an installation "
                    "token; check the network or the API URL"
                ) from None
            raise SourceError(
                f"cannot reach {self._about}: {_clean(str(reason), (jwt,))}; check the network "
                "and the API URL"
            ) from None
        return self._read_token(body)

    def _refused(self, error: urllib.error.HTTPError, jwt: str) -> str:
        try:
            detail = _github_message(error.read(_MAX_ANSWER), (jwt,))
        except (OSError, http.client.HTTPException):
            detail = ""
        return (
            f"{self._about} refused to create an installation token: HTTP {error.code}"
            f"{f' ({detail})' if detail else ''}; {_hint(error.code)}"
        )

    def _read_token(self, body: bytes) -> tuple[str, float]:
        try:
            answer: Any = json.loads(body)
            token = answer["token"]
            expires = datetime.fromisoformat(answer["expires_at"])
        except (ValueError, TypeError, KeyError):
            raise SourceError(
                f"{self._about} answered without a usable token and expires_at; check that the "
                "API URL points at the GitHub REST API"
            ) from None
        if not isinstance(token, str) or not token or any(c in token for c in _BAD_CHARACTERS):
            raise SourceError(f"{self._about} answered with an empty or malformed token")
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return token, expires.timestamp()


def with_credentials(remote: Remote, provider: CredentialProvider) -> Remote:
    """``remote`` with the provider's current username and token in place of any in its URL.

    Only for http(s) remotes: ssh authenticates with keys, local paths need nothing. The URL's
    own userinfo is dropped (the provider wins), so the display and the cache key are the URL
    without credentials; its secrets are still scrubbed from git's messages. Raises
    ``SourceError`` saying what is wrong; the caller adds the URL and ref.
    """
    if remote.local or not remote.location.startswith(("http://", "https://")):
        raise SourceError(
            "token credentials apply to http(s) URLs only; use an ssh key (ssh-agent or "
            "GIT_SSH_COMMAND) for an ssh URL, or switch to the https URL"
        )
    username, token = provider.current()
    if not token or any(char in username + token for char in _BAD_CHARACTERS):
        raise SourceError(
            "the credential provider gave an empty token or one with a line break; check it"
        )
    secrets = {part for part in (token, *remote.secrets) if len(part) >= _MIN_SECRET_LEN}
    return replace(
        remote,
        display=remote.location,
        identity=remote.location,
        username=username,
        password=token,
        secrets=tuple(sorted(secrets, key=len, reverse=True)),
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would carry the JWT to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _hint(code: int) -> str:
    if code == 401:
        return "check the app ID, and that the private key belongs to this app and was not revoked"
    if code == 404:
        return "check the installation ID and that the app is installed on the repository owner"
    if code in (403, 422):
        return "check the app's permissions and that the installation is not suspended"
    if 300 <= code < 400:
        return (
            "the API URL redirects; give the final URL (for GitHub Enterprise: https://HOST/api/v3)"
        )
    return "try again later, or check GitHub's status"


def _github_message(body: bytes, secrets: tuple[str, ...]) -> str:
    """GitHub's own ``message`` from an error answer, short and scrubbed."""
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        return ""
    return _clean(message, secrets) if isinstance(message, str) else ""


def _clean(text: str, secrets: tuple[str, ...]) -> str:
    single_line = " ".join(mask_text(text, secrets).split())
    if len(single_line) > _MAX_DETAIL:
        return single_line[: _MAX_DETAIL - 1] + "…"
    return single_line


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())
