"""Keeping provider URLs' secret parts out of every message, result and log line.

A Slack or Mattermost incoming-webhook URL *is* a credential: whoever knows its path can post.
Any URL may also carry a password in its userinfo or a token in its query. So a provider URL only
ever appears as :func:`masked_url` shows it::

    https://hooks.slack.com/services/T0/B0/abc123     ->  https://hooks.slack.com/services/***
    https://bot:pw@alerts.example.com/hook?token=x   ->  https://***@alerts.example.com/hook?token=***

and every text that might echo a URL (an httpx error, a receiver's response body) goes through a
:class:`Redactor` first. httpx itself logs each request URL at INFO on the ``httpx`` logger; while a
Notifier is open its redactors are installed as a filter on that logger (:func:`install`).

A secret rarely comes back in the form it was sent: an API server quotes it Go-style (``%q``),
a JSON body escapes it, a URL percent-encodes it, a Secret carries it in base64, sometimes in the
middle of a longer base64 text. :func:`spellings` lists every such form of one value; both this
module's :class:`Redactor` and the decrypted-value redactor of a sync mask all of them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections import Counter
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

import httpx

MASK = "***"
# Fragments shorter than this are masked only as part of the whole URL: replacing every "ab" in a
# message would make it unreadable without protecting anything worth the name.
_MIN_FRAGMENT = 4
_HTTPX_LOGGERS = ("httpx", "httpcore")


def masked_url(url: str, *, secret_path: bool = False) -> str:
    """``url`` with userinfo, query values and fragment masked, and the path after its first
    segment too when ``secret_path`` (webhook URLs whose path is the credential)."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "<unparseable URL>"
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    path = _masked_path(parts.path) if secret_path else parts.path
    query = "&".join(f"{key}={MASK}" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    if parts.query and not query:
        query = MASK
    text = f"{parts.scheme}://{netloc}{path}" if parts.scheme else f"{netloc}{path}"
    if query:
        text += f"?{query}"
    if parts.fragment:
        text += f"#{MASK}"
    return text


def _masked_path(path: str) -> str:
    first, sep, rest = path.lstrip("/").partition("/")
    if not first:
        return path
    if not sep:
        return f"/{MASK}"
    return f"/{first}/{MASK}" if rest else f"/{first}/"


class Redactor:
    """Replaces one URL, and each of its secret parts, wherever they occur in a text."""

    def __init__(self, url: str, *, secret_path: bool = False) -> None:
        self.url = url
        self.masked = masked_url(url, secret_path=secret_path)
        whole = {url}
        with contextlib.suppress(httpx.InvalidURL, TypeError, ValueError):
            whole.add(str(httpx.URL(url)))
        fragments = {form for part in _secret_parts(url, secret_path) for form in _forms(part)}
        self._replacements = sorted(
            [(text, self.masked) for text in whole if text]
            + [(text, MASK) for text in fragments if len(text) >= _MIN_FRAGMENT],
            key=lambda pair: len(pair[0]),
            reverse=True,
        )

    def scrub(self, text: str) -> str:
        for needle, replacement in self._replacements:
            text = text.replace(needle, replacement)
        return text


def _secret_parts(url: str, secret_path: bool) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    secrets: list[str] = []
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        user, _, password = userinfo.partition(":")
        secrets += [userinfo, user, password]
    if secret_path:
        rest = parts.path.lstrip("/").partition("/")[2] or parts.path.lstrip("/")
        secrets.append(rest)
    if parts.query:
        secrets.append(parts.query)
        secrets += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    if parts.fragment:
        secrets.append(parts.fragment)
    return secrets


def _forms(part: str) -> set[str]:
    """``part`` as typed, decoded and encoded: messages may show any of them."""
    return spellings(part) | spellings(unquote(part))


# Base64 fragments shorter than this (of a value seen inside a longer base64 text) would match
# unrelated text too often to be worth masking; the whole value's encodings are always masked.
_MIN_BASE64_CORE = 6
_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def spellings(value: str) -> set[str]:
    """Every form ``value`` can take in an error message, a response body or a log line: as is,
    JSON-escaped (once and twice, ASCII or not), Go-quoted (``%q`` and ``%+q``), YAML
    single-quoted, Python ``repr``, percent-encoded (path, component, form) and base64
    (standard and URL-safe, padded or not, and the part of it that any longer base64 text
    holding the value must contain). The empty string is never returned."""
    forms = {value}
    for ascii_only in (True, False):
        once = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    forms |= {go_quote(value), go_quote(value, ascii_only=True)}
    forms |= {value.replace("'", "''"), repr(value)[1:-1]}
    forms |= {quote(value, safe=""), quote(value, safe="/"), quote_plus(value)}
    forms |= _base64_forms(value.encode())
    forms.discard("")
    return forms


def go_quote(value: str, *, ascii_only: bool = False) -> str:
    """``value`` as Go's ``strconv.Quote`` (or ``QuoteToASCII``) writes it, without the quotes:
    how the Kubernetes API server shows a field's value in an error."""
    out = []
    for char in value:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable() and (char.isascii() or not ascii_only):
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


def _base64_forms(data: bytes) -> set[str]:
    """The base64 of ``data`` in both alphabets, padded and not; and, for each of the three
    alignments ``data`` can have inside a longer text, the characters that depend on ``data``
    alone (a Secret's ``data`` value holding the secret among other bytes)."""
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode()
        forms |= {whole, whole.rstrip("=")}
        for offset in (1, 2):
            shifted = encode(bytes(offset) + data).decode().rstrip("=")
            first = -(-8 * offset // 6)
            last = 8 * (offset + len(data)) // 6
            core = shifted[first:last]
            if len(core) >= _MIN_BASE64_CORE:
                forms.add(core)
        core = whole.rstrip("=")[: 8 * len(data) // 6]
        if len(core) >= _MIN_BASE64_CORE:
            forms.add(core)
    return forms


class _LogFilter(logging.Filter):
    """Scrubs every registered URL out of records of the loggers it is installed on."""

    def __init__(self) -> None:
        super().__init__("tether.notify.redact")
        self.redactors: Counter[Redactor] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.redactors:
            message = record.getMessage()
            scrubbed = message
            for redactor in self.redactors:
                scrubbed = redactor.scrub(scrubbed)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True


_FILTER = _LogFilter()


def install(redactors: list[Redactor]) -> None:
    """Scrub ``redactors``' URLs from httpx's own log records until :func:`uninstall`."""
    for name in _HTTPX_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    _FILTER.redactors.update(redactors)


def uninstall(redactors: list[Redactor]) -> None:
    _FILTER.redactors.subtract(redactors)
    for redactor in [r for r, count in _FILTER.redactors.items() if count <= 0]:
        del _FILTER.redactors[redactor]
