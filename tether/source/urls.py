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
from urllib.parse import quote, unquote

from tether.errors import SourceError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_HTTP = ("http", "https")
_SSH = ("ssh", "git+ssh", "ssh+git")
_WHAT_TO_GIVE = "give an https://, ssh:// or scp-like (git@host:org/repo.git) URL"
_REMOTE_HELPER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
_RAW_MARKERS = "/?#@ "
_HOST_AND_PORT = re.compile(r"[^@:\[\]]+:[0-9]+|\[[0-9A-Fa-f:.]+\](:[0-9]+)?")
_MASK = "***"
_MIN_SECRET_LEN = 4


def mask_url(url: str) -> str:
    """``url`` with the password (or an http token standing alone as userinfo) replaced by ***.

    ``https://user:secret@host/x`` -> ``https://user:***@host/x``;
    ``https://ghp_token@host/x`` -> ``https://***@host/x``; ``ssh://git@host/x`` is unchanged
    (a bare ssh user name is not a secret). Local paths are returned as they are.

    A password written without percent-encoding may hold ``/ ? # @ %`` or spaces, which would
    end the userinfo early under the URL grammar; once ``user:`` opens the URL, everything up to
    its last ``@`` is masked, so such a password never shows (a path that itself holds ``@``
    after a ``host:port`` is then masked too: shown less, never leaked).
    """
    scheme = _SCHEME.match(url)
    if scheme:
        return _mask_scheme_url(url, scheme)
    if is_scp_like(url):
        return _mask_scp_url(url)
    return url


def userinfo_end(url: str, start: int) -> int:
    """Where the userinfo that begins at ``start`` ends (the index of its ``@``), or -1.

    The standard reading (an ``@`` before the first ``/ ? #``) unless ``user:`` comes first, in
    which case the last ``@`` of ``url``: a raw password may hold any character but a line break.
    """
    authority_end = _authority_end(url, start)
    colon = url.find(":", start, authority_end)
    if colon >= 0:
        last_at = url.rfind("@", colon)
        if last_at >= 0:
            return last_at
    return url.rfind("@", start, authority_end)


def _mask_scheme_url(url: str, scheme: re.Match[str]) -> str:
    start = scheme.end()
    at = userinfo_end(url, start)
    if at < 0:
        return url
    return url[:start] + _mask_userinfo(url[start:at], scheme.group(1).lower()) + url[at:]


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
    colon = url.find(":")
    at = url.rfind("@")
    if at < 0 or (colon < 0 or colon > at) or url.find("@") < colon:
        return url  # ``host:path`` or ``user@host:path``: no password
    return f"{url[:colon]}:{_MASK}{url[at:]}"


def is_scp_like(url: str) -> bool:
    """git's rule: ``[user@]host:path`` is ssh when a colon comes before any slash."""
    colon = url.find(":")
    slash = url.find("/")
    return colon > 0 and (slash < 0 or colon < slash) and not _SCHEME.match(url)


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` (e.g. git's stderr) with ``secrets`` removed (raw and percent-encoded) and the
    userinfo masked in every ``scheme://`` URL it holds (a URL ends at a space or a quote)."""
    masked = text
    for secret in _with_encodings(secrets):
        masked = masked.replace(secret, _MASK)
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), masked)


def _with_encodings(secrets: tuple[str, ...]) -> list[str]:
    """Each secret as given and percent-encoded (as git and servers may echo it), longest first."""
    forms = {form for secret in secrets if secret for form in (secret, quote(secret, safe=""))}
    return sorted(forms, key=len, reverse=True)


@dataclass(frozen=True)
class Remote:
    """One source URL, parsed once. See the module docstring for the three forms."""

    display: str
    location: str
    identity: str
    local: bool
    scheme: str = "file"  # what git's GIT_ALLOW_PROTOCOL calls it: https, http, ssh, git or file
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
    """Parse a source URL: a local path, ``file://``, ``http(s)://``, ``ssh://`` or scp-like.

    ``git://`` (a git daemon, read-only and unauthenticated) is accepted too. Any other scheme
    (``ftp://``, ``foo://``) and git's remote-helper syntax (``ext::…``, ``fd::…``,
    ``<helper>::<address>``) are refused: git would run a program for them.
    """
    url = url.strip()
    if not url or "\n" in url or "\r" in url or "\0" in url:
        raise SourceError(f"invalid source URL {mask_url(url)!r}: give a path or a git URL")
    if _REMOTE_HELPER.match(url):
        raise SourceError(
            f"source URL {mask_url(url)!r} names a git remote helper "
            f"({url.partition('::')[0]}::), which runs a program instead of fetching; "
            f"{_WHAT_TO_GIVE}"
        )
    scheme = _SCHEME.match(url)
    if scheme is None:
        return _scp_remote(url) if is_scp_like(url) else _local_remote(Path(url))
    kind = scheme.group(1).lower()
    if kind == "file":
        return _file_remote(url, scheme)
    if kind in _HTTP:
        return _http_remote(url, scheme)
    if kind in _SSH:
        return _other_remote(url, "ssh")
    if kind == "git":  # git daemon: read-only, no credentials to carry
        return _other_remote(url, "git")
    raise SourceError(
        f"source URL {mask_url(url)!r} uses the scheme {kind}://, which Tether does not fetch "
        f"from; {_WHAT_TO_GIVE}"
    )


def _local_remote(path: Path) -> Remote:
    resolved = str(path.expanduser().resolve())
    return Remote(display=resolved, location=resolved, identity=resolved, local=True, scheme="file")


def _file_remote(url: str, scheme: re.Match[str]) -> Remote:
    start = scheme.end()
    path_start = url.find("/", start)
    path = unquote(url[path_start:]) if path_start >= 0 else "/"
    resolved = str(Path(path).resolve())
    return Remote(display=mask_url(url), location=url, identity=resolved, local=True, scheme="file")


def _http_remote(url: str, scheme: re.Match[str]) -> Remote:
    kind, start = scheme.group(1).lower(), scheme.end()
    authority_end = _authority_end(url, start)
    if _HOST_AND_PORT.fullmatch(url[start:authority_end]) and "@" in url[authority_end:]:
        raise SourceError(
            f"source URL {mask_url(url)!r} is ambiguous: a port and a path holding '@', or a "
            "password with '/', '?' or '#' written as it is; write an '@' in the path as %40, "
            "or percent-encode the password"
        )
    at = userinfo_end(url, start)
    rest = url[at + 1 :] if at >= 0 else url[start:]
    authority_end = _authority_end(rest, 0)
    location = f"{kind}://{rest[:authority_end].lower()}{rest[authority_end:].rstrip('/')}"
    if at < 0:
        return Remote(
            display=location, location=location, identity=location, local=False, scheme=kind
        )
    userinfo = url[start:at]
    raw_user, colon, raw_password = userinfo.partition(":")
    username, password = _decoded(raw_user), _decoded(raw_password)
    _check_credential(username + password, url)
    display = location.replace("://", f"://{_mask_userinfo(userinfo, 'http')}@", 1)
    secret_parts = (raw_password, password) if colon else (raw_user, username)
    return Remote(
        display=display,
        location=location,
        identity=display,
        local=False,
        scheme=kind,
        username=username,
        password=password,
        secrets=_secrets(secret_parts),
    )


def _decoded(value: str) -> str:
    """Percent-decoded, unless the value was evidently written raw (it holds characters a URL
    cannot carry unencoded there): then it is taken exactly as written."""
    return value if any(char in value for char in _RAW_MARKERS) else unquote(value)


def _check_credential(value: str, url: str) -> None:
    if any(char in value for char in "\n\r\0"):
        raise SourceError(
            f"invalid source URL {mask_url(url)}: its credentials contain a line break; "
            "percent-encode them correctly"
        )


def _scp_remote(url: str) -> Remote:
    host = url[: url.find(":")].rpartition("@")[2]
    if host.startswith("-") or url.startswith("-"):
        raise SourceError(
            f"invalid source URL {mask_url(url)!r}: a host cannot start with '-' (it would be "
            "read as an ssh option)"
        )
    return _other_remote(url, "ssh")


def _other_remote(url: str, kind: str) -> Remote:
    display = mask_url(url.rstrip("/"))
    return Remote(
        display=display,
        location=url,
        identity=display,
        local=False,
        scheme=kind,
        secrets=_secrets(_embedded_passwords(url, display)),
    )


def _embedded_passwords(url: str, masked: str) -> tuple[str, ...]:
    """The password of ``ssh://user:pw@host`` or ``user:pw@host:path``, raw and decoded: what
    masking replaced by ``***``."""
    if masked == url.rstrip("/") or _MASK not in masked:
        return ()
    prefix = masked[: masked.index(_MASK)]
    suffix_length = len(masked) - len(prefix) - len(_MASK)
    password = url.rstrip("/")[len(prefix) : len(url.rstrip("/")) - suffix_length]
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
