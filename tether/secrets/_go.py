"""How Go spells and reads scalars, because sops hashes and encrypts Go's spelling.

- ``format_float``: ``strconv.FormatFloat(v, 'f', -1, 64)`` (shortest digits, never an exponent).
- ``parse_bool`` / ``parse_int`` / ``parse_float``: ``strconv.ParseBool`` / ``Atoi`` /
  ``ParseFloat``, for decrypted values.
- ``yaml_timestamp`` / ``rfc3339``: the timestamps go yaml.v3 recognises in unquoted scalars,
  and RFC 3339 as ``time.Time`` parses and prints it.
- ``resolve_plain``: what go yaml.v3 makes of an unquoted scalar (YAML 1.2 flavoured: ``on``
  and ``yes`` stay strings, ``017`` is octal, ``1_000`` is an int).
"""

from __future__ import annotations

import calendar
import math
import re
from decimal import Decimal
from typing import Any

from tether.secrets._tree import Timestamp

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


def format_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


def format_bool(value: bool) -> str:
    """sops writes booleans the way Python's ``str`` does (its first implementation)."""
    return "True" if value else "False"


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_DECIMAL_INT = re.compile(r"[+-]?[0-9]+\Z")
_DECIMAL_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_BAD_UNDERSCORE = re.compile(r"(?<![0-9])_|_(?![0-9])")
_SPECIAL_FLOAT = re.compile(r"([+-]?)(inf|infinity|nan)\Z", re.IGNORECASE)


def parse_bool(text: str) -> bool:
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError("not a boolean")


def parse_int(text: str) -> int:
    if not _DECIMAL_INT.match(text):
        raise ValueError("not an integer")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("integer out of range")
    return value


def parse_float(text: str) -> float:
    special = _SPECIAL_FLOAT.match(text)
    if special:
        if special.group(2).lower() == "nan":
            return math.nan
        return -math.inf if special.group(1) == "-" else math.inf
    if not _DECIMAL_FLOAT.match(text):
        raise ValueError("not a float")
    value = float(text)
    if math.isinf(value):
        raise ValueError("float out of range")
    return value


# --- time ----------------------------------------------------------------------------------------

_YAML_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})"
    r"(?:[.,](?P<frac>[0-9]+))?(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})"
    r"|(?P<sp> )(?P<h2>[0-9]{1,2}):(?P<mi2>[0-9]{1,2}):(?P<s2>[0-9]{1,2})(?:[.,](?P<frac2>[0-9]+))?"
    r")?\Z"
)
_RFC3339 = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})T(?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):"
    r"(?P<s>[0-9]{2})(?:\.(?P<frac>[0-9]+))?(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})\Z"
)


def yaml_timestamp(text: str) -> Timestamp | None:
    """The time go yaml.v3 reads from an unquoted scalar, or None when it is not one."""
    match = _YAML_TIMESTAMP.match(text)
    if not match:
        return None
    return _timestamp(match)


def rfc3339(text: str) -> Timestamp:
    """``time.Time.UnmarshalText``: strict RFC 3339; raises ValueError otherwise."""
    match = _RFC3339.match(text)
    if not match:
        raise ValueError("not an RFC 3339 time")
    parsed = _timestamp(match)
    if parsed is None:
        raise ValueError("not a valid time")
    return parsed


def rfc3339_seconds(text: str) -> str:
    """A ``lastmodified`` value as sops re-formats it for the MAC's associated data."""
    stamp = rfc3339(text).text
    return re.sub(r"\.[0-9]+(?=Z|[+-])", "", stamp)


def _group(match: re.Match[str], *names: str) -> str:
    for name in names:
        if name in match.re.groupindex and match[name] is not None:
            return match[name]
    return ""


def _timestamp(match: re.Match[str]) -> Timestamp | None:
    """Validated like Go's ``time.Parse``, printed like ``time.Time.MarshalText``."""
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    # Year 0 is a leap year in Go's proleptic calendar, like 2000 (Python has no year 0).
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year or 2000, month)[1]:
        return None
    hour = int(_group(match, "h", "h2") or 0)
    minute = int(_group(match, "mi", "mi2") or 0)
    second = int(_group(match, "s", "s2") or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    nanos = _group(match, "frac", "frac2")[:9].ljust(9, "0")
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    if int(nanos):
        text += "." + nanos.rstrip("0")
    zone = _group(match, "tz") or "Z"
    if zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 24 or minutes > 60:
            return None
        if hours == 0 and minutes == 0:
            zone = "Z"
    return Timestamp(text + zone)


# --- go yaml.v3 scalar resolution ----------------------------------------------------------------

_YAML_WORDS: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_GO_INT = re.compile(
    r"(?P<sign>[+-]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[bB](?P<bin>[01]+)|0[oO](?P<oct>[0-7]+)"
    r"|(?P<legacy>0[0-7]+)|(?P<dec>0|[1-9][0-9]*))\Z"
)


class UnsupportedScalar(ValueError):
    """A scalar go yaml.v3 reads as something sops cannot hold (an unsigned 64-bit integer)."""


def resolve_plain(text: str) -> Any:
    """The value of an unquoted YAML scalar as go yaml.v3 decodes it into ``interface{}``."""
    if text in _YAML_WORDS:
        return _YAML_WORDS[text]
    if text == "<<":
        return text
    first = text[:1]
    if first == ".":
        return _go_parse_float_or(text, text)
    if not first or not (first.isascii() and (first.isdigit() or first in "+-")):
        return text
    if first.isdigit():
        stamp = yaml_timestamp(text)
        if stamp is not None:
            return stamp
    plain = text.replace("_", "")
    number = _go_parse_int(plain)
    if number is not None:
        if number > INT64_MAX:
            if number <= UINT64_MAX and not plain.startswith("-"):
                raise UnsupportedScalar(text)
        elif number >= INT64_MIN:
            return number
    if _YAML_FLOAT.match(plain):
        value = _go_parse_float_or(plain, None)
        if value is not None:
            return value
    return text


def _go_parse_int(plain: str) -> int | None:
    """``strconv.ParseInt(plain, 0, 64)`` / ``ParseUint`` without their range limits."""
    match = _GO_INT.match(plain)
    if not match:
        return None
    sign = -1 if match["sign"] == "-" else 1
    if match["hex"]:
        return sign * int(match["hex"], 16)
    if match["bin"]:
        return sign * int(match["bin"], 2)
    if match["oct"]:
        return sign * int(match["oct"], 8)
    if match["legacy"]:
        return sign * int(match["legacy"], 8)
    return sign * int(match["dec"])


def _go_parse_float_or(text: str, default: Any) -> Any:
    """``strconv.ParseFloat`` for the decimal forms YAML allows; ``default`` when it fails."""
    if "_" in text:  # Go accepts underscores between digits
        if _BAD_UNDERSCORE.search(text):
            return default
        text = text.replace("_", "")
    if not _DECIMAL_FLOAT.match(text):
        return default
    value = float(text)
    return default if math.isinf(value) else value
