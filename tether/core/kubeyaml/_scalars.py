"""Scalars as Kubernetes reads them: go-yaml v2's ``resolve``, then what sigs.k8s.io/yaml's JSON
conversion and apimachinery's JSON round trip make of the result (what kubectl sends).

Read with the sources at hand (sigs.k8s.io/yaml v1.4.0 ``goyaml.v2/resolve.go`` and
``decode.go``, ``yaml.go``; Go's ``strconv`` and ``encoding/json``), and checked against the
real kubectl and API server by tests/render/test_yaml_kubectl.py.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from decimal import Decimal
from typing import Any, Final

from yaml.events import ScalarEvent

STR: Final = "tag:yaml.org,2002:str"
INT: Final = "tag:yaml.org,2002:int"
FLOAT: Final = "tag:yaml.org,2002:float"
BOOL: Final = "tag:yaml.org,2002:bool"
NULL: Final = "tag:yaml.org,2002:null"
TIMESTAMP: Final = "tag:yaml.org,2002:timestamp"
BINARY: Final = "tag:yaml.org,2002:binary"
MERGE: Final = "tag:yaml.org,2002:merge"
_RESOLVABLE = frozenset({"", STR, BOOL, INT, FLOAT, NULL, TIMESTAMP})

_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1


class Refused(Exception):
    """go-yaml or the JSON conversion fails on this value: kubectl refuses the document."""


_MAP: dict[str, tuple[str, Any]] = {}
for _words, _tag, _value in (
    ("y Y yes Yes YES true True TRUE on On ON", BOOL, True),
    ("n N no No NO false False FALSE off Off OFF", BOOL, False),
    ("~ null Null NULL", NULL, None),
    (".nan .NaN .NAN", FLOAT, float("nan")),
    (".inf .Inf .INF +.inf +.Inf +.INF", FLOAT, float("inf")),
    ("-.inf -.Inf -.INF", FLOAT, float("-inf")),
):
    for _word in _words.split():
        _MAP[_word] = (_tag, _value)
_MAP[""] = (NULL, None)

_HINTS = {**dict.fromkeys("yYnNtTfFoO~", "M"), **dict.fromkeys("0123456789", "D")}
_HINTS |= {"+": "S", "-": "S", ".": "."}
_GO_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_GO_UINT = re.compile(r"(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d?)-(\d\d?)"
    r"(?:(?:[Tt](\d\d?):(\d\d?):(\d\d?)(?:[.,](\d+))?(Z|[+-]\d\d:\d\d))"
    r"|(?: +(\d\d?):(\d\d?):(\d\d?)(?:[.,](\d+))?))?"
)


def resolve(tag: str, value: str) -> tuple[str, Any]:
    """go-yaml v2's ``resolve``: the tag and Go value of a scalar (``tag`` is "" when plain).

    Values: bool, None, int, float or str (a timestamp stays the text written). Raises ``Refused``
    where go-yaml fails (an explicit tag the value does not fit)."""
    if tag not in _RESOLVABLE:
        return tag, value
    resolved = resolve_untyped(tag, value)
    if tag in ("", STR, resolved[0]):
        return resolved
    if tag == FLOAT and resolved[0] == INT:
        return FLOAT, float(resolved[1])
    raise Refused(f"cannot decode {_short(resolved[0])} `{value}` as a {_short(tag)}")


def resolve_untyped(tag: str, value: str) -> tuple[str, Any]:
    hint = _HINTS.get(value[0], "") if value else "M"
    if not hint or tag == STR:
        return STR, value
    known = _MAP.get(value)
    if known is not None:
        return known
    if hint == ".":
        if _DOT_FLOAT.fullmatch(value):
            number = float(value)
            if number not in (float("inf"), float("-inf")):
                return FLOAT, number
    elif hint in ("D", "S"):
        if tag in ("", TIMESTAMP) and _is_timestamp(value):
            return TIMESTAMP, value
        return _number(value.replace("_", ""), value)
    return STR, value


def _number(plain: str, value: str) -> tuple[str, Any]:
    # 0b + 64 binary digits is the longest 64-bit integer; longer text must not reach int()
    # (Python refuses to convert very long digit strings).
    if len(plain) <= 67 and _GO_INT.fullmatch(plain):
        number = _go_int(plain)
        if _INT64[0] <= number <= _INT64[1]:
            return INT, number
        if _GO_UINT.fullmatch(plain) and number <= _UINT64_MAX:
            return INT, number
    if _YAML_FLOAT.fullmatch(plain):
        number_f = float(plain)
        if number_f not in (float("inf"), float("-inf")):  # Go: out of range, so a string
            return FLOAT, number_f
    return STR, value


def _go_int(text: str) -> int:
    """An integer in Go's base-0 syntax (``strconv.ParseInt(s, 0, 64)`` without the range)."""
    sign = -1 if text[0] == "-" else 1
    digits = text.lstrip("+-")
    prefix = digits[:2].lower()
    if prefix in ("0x", "0b", "0o"):
        return sign * int(digits[2:], {"0x": 16, "0b": 2, "0o": 8}[prefix])
    if len(digits) > 1 and digits[0] == "0":
        return sign * int(digits[1:], 8)
    return sign * int(digits)


def _is_timestamp(value: str) -> bool:
    """Whether ``time.Parse`` accepts ``value`` in one of go-yaml's four layouts. Decoded into
    ``interface{}``, go-yaml then keeps the text as written, so this only decides that such a
    value is not a number and whether an explicit ``!!timestamp`` tag fits."""
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return False
    groups = match.groups()
    year, month, day = int(groups[0]), int(groups[1]), int(groups[2])
    clock = groups[3:6] if groups[3] is not None else groups[8:11]
    hour, minute, second = (int(part) if part is not None else 0 for part in clock)
    zone = groups[7] or "Z"
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(year, month):
        return False
    if hour > 23 or minute > 59 or second > 59:
        return False
    return zone == "Z" or (int(zone[1:3]) <= 24 and int(zone[4:6]) <= 60)


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _short(tag: str) -> str:
    return "!!" + tag.rpartition(":")[2] if tag.startswith("tag:yaml.org,2002:") else tag


def to_json(value: Any) -> Any:
    """The JSON-ready Python value kubectl sends for a Go scalar ``value``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else _float_as_sent(float(value))
    return _float_as_sent(value)


def _float_as_sent(number: float) -> int | float:
    """A float64 after Go's JSON encoder and apimachinery's decoder: integral values written
    without exponent (|x| in [1e-6, 1e21)) come back as integers, with Go's shortest digits."""
    if math.isnan(number) or math.isinf(number):
        raise Refused(
            f"{'NaN' if math.isnan(number) else 'an infinite number'} cannot be sent as JSON "
            "(kubectl refuses it too); quote the value to send a string"
        )
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return number
    if number.is_integer():
        return int(Decimal(repr(number)))
    return number


def key_string(value: Any) -> str:
    """The JSON key sigs.k8s.io/yaml makes of a Go map key; ``Refused`` for the others."""
    if value is None:
        raise Refused("a mapping key that is null cannot be converted to JSON; quote the key")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value > _INT64[1]:
            raise Refused(f"the mapping key {value} is beyond int64; quote the key")
        return str(value)
    return _float32_g(value)


def _float32_g(number: float) -> str:
    """``strconv.FormatFloat(number, 'g', -1, 32)``, with go-yaml's names for inf and NaN."""
    if math.isnan(number):
        return ".nan"
    try:
        single = struct.unpack("f", struct.pack("f", number))[0]
    except OverflowError:
        single = float("inf") if number > 0 else float("-inf")
    if single in (float("inf"), float("-inf")):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if str(single).startswith("-") else "0"
    for precision in range(1, 10):
        digits = f"{single:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(digits)))[0] == single:
            break
    mantissa, exponent_text = digits.split("e")
    exponent = int(exponent_text)
    sign = "-" if mantissa.startswith("-") else ""
    figures = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    if exponent < -4 or exponent >= 6:
        body = figures[0] + ("." + figures[1:] if len(figures) > 1 else "")
        return f"{sign}{body}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{figures}"
    whole = figures[: exponent + 1].ljust(exponent + 1, "0")
    rest = figures[exponent + 1 :]
    return f"{sign}{whole}" + (f".{rest}" if rest else "")


def go_scalar(event: ScalarEvent) -> tuple[str, Any]:
    """The go-yaml tag and value of one scalar event."""
    tag = event.tag or ""
    if tag == "!" or (not tag and not event.implicit[0]):
        return STR, event.value
    tag, value = resolve(tag, event.value)
    if tag == BINARY:
        try:
            decoded = base64.b64decode(re.sub(r"[\r\n]", "", value), validate=True)
        except (binascii.Error, ValueError):
            raise Refused("!!binary value contains invalid base64 data") from None
        try:
            return STR, decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("this !!binary value is not UTF-8 text; Tether refuses it") from None
    return tag, value


def is_merge(event: Any) -> bool:
    """go-yaml's test for a merge key: a plain ``<<`` (or one tagged ``!!merge``)."""
    return (
        type(event) is ScalarEvent
        and event.value == "<<"
        and (event.implicit[0] or event.tag == MERGE)
    )


def node_tag(event: ScalarEvent) -> str:
    """The tag of a scalar node as Kubernetes resolves it (``!`` and quoted: a string)."""
    tag: str = event.tag or ""
    if tag == "!" or (not tag and not event.implicit[0]):
        return STR
    return tag or resolve_untyped("", event.value)[0]
