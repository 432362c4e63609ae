"""Source URLs: telling local paths from remotes, masking credentials, naming cache entries.

A ``Remote`` is a parsed source URL in every form the rest of ``tether.source`` needs:

- ``display``: what messages and revisions show. Credentials are masked (``user:***``; a
  token-only userinfo in an http(s) URL becomes ``***``). Local paths are made absolute.
- ``location``: what git is given. Credentials are removed from http(s) URLs; they reach git
  through a credential helper that reads them from the environment (see ``tether.source.git``),
  so they never sit on a command line or in the cache's config.
- ``identity``: what the cache is keyed on: the display form, so rotating a password or token
  reuses the same mirror, while different users (or repositories) get different ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from tether.errors import SourceError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_USERINFO = re.compile(r"^(?P<user>[^@/:]+)(?P<password>:[^@/]*)?@(?P<rest>.+)$")
_URL_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s/@'\"]+)@")
_HTTP = ("http", "https")
_MASK = "***"
_MIN_SECRET_LEN = 4


def mask_url(url: str) -> str:
    """``url`` with the password (or an http token standing alone as userinfo) replaced by ***.

    ``https://user:secret@host/x`` -> ``https://user:***@host/x``;
    ``https://ghp_token@host/x`` -> ``https://***@host/x``; ``ssh://git@host/x`` is unchanged
    (a bare ssh user name is not a secret). Local paths are returned as they are.
    """
    scheme = _SCHEME.match(url)
    if scheme:
        return _mask_scheme_url(url, scheme)
    if is_scp_like(url):
        return _mask_scp_url(url)
    return url


def _mask_scheme_url(url: str, scheme: re.Match[str]) -> str:
    start = scheme.end()
    authority_end = _authority_end(url, start)
    userinfo, at, _ = url[start:authority_end].rpartition("@")
    if not at:
        return url
    masked = _mask_userinfo(userinfo, scheme.group(1).lower())
    return url[:start] + masked + url[start + len(userinfo) :]


def _authority_end(url: str, start: int) -> int:
    """Where the ``user@host:port`` part of a URL ends (the first /, ? or # after it)."""
    ends = [url.find(char, start) for char in "/?#"]
    return min((end for end in ends if end >= 0), default=len(url))


def _mask_userinfo(userinfo: str, scheme: str) -> str:
    user, colon, _ = userinfo.partition(":")
    if colon:
        return f"{user}:{_MASK}"
    return _MASK if scheme in _HTTP else userinfo


def _mask_scp_url(url: str) -> str:
    match = _SCP_USERINFO.match(url)
    if not match or not match.group("password"):
        return url
    return f"{match.group('user')}:{_MASK}@{match.group('rest')}"


def is_scp_like(url: str) -> bool:
    """git's rule: ``[user@]host:path`` is ssh when a colon comes before any slash."""
    colon = url.find(":")
    slash = url.find("/")
    return colon > 0 and (slash < 0 or colon < slash) and not _SCHEME.match(url)


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` (e.g. git's stderr) with userinfo masked in every URL and ``secrets`` removed."""
    masked = _URL_IN_TEXT.sub(
        lambda m: f"{m.group(1)}://{_mask_userinfo(m.group(2), m.group(1).lower())}@", text
    )
    for secret in secrets:
        masked = masked.replace(secret, _MASK)
    return masked


@dataclass(frozen=True)
class Remote:
    """One source URL, parsed once. See the module docstring for the three forms."""

    display: str
    location: str
    identity: str
    local: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def cache_name(self) -> str:
        """A directory name for this remote's mirror: a readable slug plus a hash of identity."""
        digest = hashlib.sha256(self.identity.encode()).hexdigest()[:16]
        return f"{_slug(self.identity)}-{digest}.git"

    @property
    def host(self) -> str:
        """``scheme://host[:port]`` of an http(s) remote (what its credentials are scoped to)."""
        scheme = _SCHEME.match(self.location)
        if not scheme:
            return ""
        return self.location[: _authority_end(self.location, scheme.end())]

    def scrub(self, text: str) -> str:
        """``text`` with this remote's credentials masked wherever they appear."""
        return mask_text(text, self.secrets)


def parse_remote(url: str) -> Remote:
    """Parse a source URL: a local path, ``file://``, ``http(s)://``, ``ssh://`` or scp-like."""
    url = url.strip()
    if not url or "\n" in url or "\0" in url:
        raise SourceError(f"invalid source URL {mask_url(url)!r}: give a path or a git URL")
    scheme = _SCHEME.match(url)
    if scheme is None:
        return _other_remote(url) if is_scp_like(url) else _local_remote(Path(url))
    kind = scheme.group(1).lower()
    if kind == "file":
        return _file_remote(url, scheme)
    if kind in _HTTP:
        return _http_remote(url, scheme)
    return _other_remote(url)


def _local_remote(path: Path) -> Remote:
    resolved = str(path.expanduser().resolve())
    return Remote(display=resolved, location=resolved, identity=resolved, local=True)


def _file_remote(url: str, scheme: re.Match[str]) -> Remote:
    start = scheme.end()
    path_start = url.find("/", start)
    path = unquote(url[path_start:]) if path_start >= 0 else "/"
    resolved = str(Path(path).resolve())
    return Remote(display=mask_url(url), location=url, identity=resolved, local=True)


def _http_remote(url: str, scheme: re.Match[str]) -> Remote:
    start = scheme.end()
    authority_end = _authority_end(url, start)
    userinfo, at, hostport = url[start:authority_end].rpartition("@")
    location = f"{scheme.group(1).lower()}://{hostport.lower()}{url[authority_end:].rstrip('/')}"
    if not at:
        return Remote(display=location, location=location, identity=location, local=False)
    raw_user, colon, raw_password = userinfo.partition(":")
    username, password = unquote(raw_user), unquote(raw_password)
    _check_credential(username + password, url)
    display = location.replace("://", f"://{_mask_userinfo(userinfo, 'http')}@", 1)
    secret_parts = (raw_password, password) if colon else (raw_user, username)
    return Remote(
        display=display,
        location=location,
        identity=display,
        local=False,
        username=username,
        password=password,
        secrets=_secrets(secret_parts),
    )


def _check_credential(value: str, url: str) -> None:
    if any(char in value for char in "\n\r\0"):
        raise SourceError(
            f"invalid source URL {mask_url(url)}: its credentials contain a line break; "
            "percent-encode them correctly"
        )


def _other_remote(url: str) -> Remote:
    display = mask_url(url.rstrip("/"))
    return Remote(
        display=display,
        location=url,
        identity=display,
        local=False,
        secrets=_secrets(_embedded_passwords(url)),
    )


def _embedded_passwords(url: str) -> tuple[str, ...]:
    """The password of ``ssh://user:pw@host`` or ``user:pw@host:path``, raw and decoded."""
    scheme = _SCHEME.match(url)
    if scheme:
        userinfo = url[scheme.end() : _authority_end(url, scheme.end())].rpartition("@")[0]
        password = userinfo.partition(":")[2]
    else:
        match = _SCP_USERINFO.match(url)
        password = (match.group("password") or "")[1:] if match else ""
    return (password, unquote(password)) if password else ()


def _secrets(parts: tuple[str, ...]) -> tuple[str, ...]:
    """Distinct secrets long enough to scrub from free text, longest first."""
    unique = {part for part in parts if len(part) >= _MIN_SECRET_LEN}
    return tuple(sorted(unique, key=len, reverse=True))


def _slug(identity: str) -> str:
    without_scheme = _SCHEME.sub("", identity)
    without_user = without_scheme.rpartition("@")[2] if "@" in without_scheme else without_scheme
    words = re.sub(r"[^A-Za-z0-9._]+", "-", without_user).strip("-.")
    words = words.removesuffix(".git")
    return words[-48:].lstrip("-.") or "repo"
