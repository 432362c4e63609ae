"""The one YAML reader of Tether: Kubernetes' meaning of YAML, with limits against hostile input.

    load_all(text, limits) -> [Document]     values exactly as kubectl would send them (JSON-ready)
    compose_all(text, limits) -> [Node]      PyYAML nodes with positions, for tools that need lines
    check(text, limits)                      only the limits (for readers with their own parser)

Kubernetes reads YAML through sigs.k8s.io/yaml: go-yaml v2 decodes each document into Go values,
which are then converted to JSON; kubectl sends that JSON (after one more JSON round trip through
apimachinery, which turns every number that is not an int64 into a float64). That, not YAML 1.1
(PyYAML) nor YAML 1.2, is the meaning matched here, scalar by scalar:

- booleans: ``true``/``false``, ``yes``/``no``, ``on``/``off``, ``y``/``n`` in lower, Capital
  and UPPER case; nulls: empty, ``~``, ``null``/``Null``/``NULL``;
- integers in Go syntax after every ``_`` is removed: ``0x``, ``0o``, ``0b`` and a leading ``0``
  (octal), with a sign; beyond int64 they travel as a float64;
- floats: ``1.5``, ``1e3``, ``.5``, ``.inf``/``.nan`` (which JSON, hence kubectl, refuses); a
  float whose JSON text is integral (``1e3``, ``2.0``) arrives as an integer;
- timestamps (``2024-01-01``, ``2024-01-01T10:00:00Z``) stay the text written (go-yaml keeps
  them as strings when decoding into ``interface{}``);
- everything else is a string: ``=``, ``1_000.0.1``, ``+.inf``, ``0x``; quoted and block scalars
  are always strings; ``!!binary`` is decoded;
- ``<<`` merges mappings (later keys win, a merged list's earlier maps win); keys become strings
  (``1`` -> ``"1"``, ``yes`` -> ``"true"``, ``1e6`` -> ``"1e+06"``), a null, a collection or
  an integer key beyond int64 is refused as kubectl refuses it;
- a line starting with ``---`` followed by anything but a comment is refused (kubectl splits
  documents on such lines before YAML sees them).

Deliberately stricter than kubectl: a key given twice in one mapping (kubectl keeps one
silently) is an error, as are two keys that become the same string (``1`` and ``"1"``).

Limits (``YamlLimits``, one dataclass) are checked while the event stream is read, before
anything is built, so hostile input costs neither memory nor time: the size of a document, the
number of documents, the nesting depth (aliases included, so no caller can hit a
``RecursionError``), and the number of nodes once every alias is expanded, counted without
expanding anything. kubectl's own alias-ratio refusal ("excessive aliasing") is mirrored too.

Parsing is libyaml's (PyYAML's C parser) when available; this module holds no I/O.
See docs/rendering.md and docs/decisions/0006-kubernetes-yaml-loader.md.
"""

from __future__ import annotations

import base64
import binascii
import copy
import math
import re
import struct
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    from yaml import CSafeLoader as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Parser  # type: ignore[assignment]

__all__ = [
    "DEFAULT_LIMITS",
    "Document",
    "YamlLimitExceeded",
    "YamlLimits",
    "YamlProblem",
    "check",
    "compose",
    "compose_all",
    "load",
    "load_all",
    "to_json",
]

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


# --- limits and errors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class YamlLimits:
    """How much one YAML text may ask of Tether. The defaults hold the largest real manifests
    (Prometheus operator and Crossplane CRDs of 0.8-1.6 MB, nesting under 40) many times over.

    ``max_document_chars``: characters in one document (the API server takes ~3 MB per request).
    ``max_documents``: documents in one text (a file, or one kustomize output).
    ``max_depth``: nesting of mappings and sequences, aliases expanded (kubectl allows 10000, but
    deeper than this no real manifest goes, and Python code walking it would overflow).
    ``max_nodes``: scalars, mappings and sequences of one text with every alias expanded: what
    the text would cost once loaded, counted without expanding it (an alias bomb stops here).
    """

    max_document_chars: int = 8 * 1024 * 1024
    max_documents: int = 10_000
    max_depth: int = 128
    max_nodes: int = 2_000_000


DEFAULT_LIMITS: Final = YamlLimits()


class YamlProblem(Exception):
    """Text that Kubernetes would not read (or not read safely), with the 1-based line and
    column (0 when unknown). ``at(label)`` puts the file name in front."""

    def __init__(self, problem: str, line: int = 0, column: int = 0) -> None:
        super().__init__(problem)
        self.problem, self.line, self.column = problem, line, column

    def at(self, label: str) -> str:
        """``file:line:column: problem`` (or ``file: problem`` when the position is unknown)."""
        if self.line:
            return f"{label}:{self.line}:{self.column}: {self.problem}"
        return f"{label}: {self.problem}"


class YamlLimitExceeded(YamlProblem):
    """A ``YamlLimits`` limit was reached; ``limit`` names the setting."""

    def __init__(self, problem: str, limit: str, line: int = 0, column: int = 0) -> None:
        super().__init__(problem, line, column)
        self.limit = limit


@dataclass
class Document:
    """One parsed document: its data and the 1-based line its content starts on.

    ``item_lines`` holds the line of each entry of a top-level ``items`` list (for ``List``
    documents), so expanded items can point at their own line.
    """

    data: Any
    line: int
    item_lines: list[int] = field(default_factory=list)

    def item_line(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


# --- scalars: go-yaml v2's resolve(), then what JSON makes of the result --------------------------


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

    Values: bool, None, int, float or str (a timestamp stays the text written). Raises ``_Refused``
    where go-yaml fails (an explicit tag the value does not fit)."""
    if tag not in _RESOLVABLE:
        return tag, value
    resolved = _resolve_untyped(tag, value)
    if tag in ("", STR, resolved[0]):
        return resolved
    if tag == FLOAT and resolved[0] == INT:
        return FLOAT, float(resolved[1])
    raise _Refused(f"cannot decode {_short(resolved[0])} `{value}` as a {_short(tag)}")


def _resolve_untyped(tag: str, value: str) -> tuple[str, Any]:
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
    if _GO_INT.fullmatch(plain):
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


class _Refused(Exception):
    """go-yaml or the JSON conversion fails on this value: kubectl refuses the document."""


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
        raise _Refused(
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
    """The JSON key sigs.k8s.io/yaml makes of a Go map key; ``_Refused`` for the others."""
    if value is None:
        raise _Refused("a mapping key that is null cannot be converted to JSON; quote the key")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value > _INT64[1]:
            raise _Refused(f"the mapping key {value} is beyond int64; quote the key")
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


def _scalar(event: ScalarEvent) -> tuple[str, Any]:
    """The go-yaml tag and value of one scalar event."""
    tag = event.tag or ""
    if tag == "!" or (not tag and not event.implicit[0]):
        return STR, event.value
    tag, value = resolve(tag, event.value)
    if tag == BINARY:
        try:
            decoded = base64.b64decode(re.sub(r"[\r\n]", "", value), validate=True)
        except (binascii.Error, ValueError):
            raise _Refused("!!binary value contains invalid base64 data") from None
        try:
            return STR, decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused("this !!binary value is not UTF-8 text; Tether refuses it") from None
    return tag, value


# --- the event walk: limits, sizes of anchored nodes, and building --------------------------------

_SEPARATOR = re.compile(r"^---(?![ \t]*(?:#[^\n]*)?\r?$)", re.MULTILINE)


class _Frame:
    """An open mapping or sequence, with what the limits need and what building needs."""

    __slots__ = (
        "anchor",
        "expect_key",
        "height",
        "is_mapping",
        "item_lines",
        "key",
        "key_event",
        "merge",
        "seen",
        "size",
        "start",
        "value",
    )

    def __init__(self, value: Any, is_mapping: bool, anchor: str | None, start: Any) -> None:
        self.value = value
        self.is_mapping = is_mapping
        self.anchor = anchor
        self.start = start
        self.size = 1
        self.height = 1
        self.expect_key = True
        self.key: str = ""
        self.key_event: Any = None
        self.merge = False
        self.seen: dict[str, str] = {}
        self.item_lines: list[int] | None = None


@dataclass
class _Anchor:
    value: Any
    size: int
    height: int
    go: tuple[str, Any] | None = None  # for a scalar: its go-yaml tag and value (for keys)


class _Walk:
    """One pass over the events of a YAML text, enforcing the limits; ``build`` decides whether
    JSON-ready values (``load_all``) or nodes (``compose_all``) are made, or nothing (``check``).
    """

    def __init__(self, text: str, limits: YamlLimits, mode: str) -> None:
        self.text, self.limits, self.mode = text, limits, mode
        self.nodes = 0
        self.documents: list[Document] = []
        self.roots: list[Node | None] = []

    # The loop is one function on purpose: it runs for every event of every manifest.
    def run(self) -> None:  # noqa: PLR0912, PLR0915
        limits, mode = self.limits, self.mode
        parser = _Parser(self.text)
        stack: list[_Frame] = []
        anchors: dict[str, _Anchor] = {}
        building: set[str] = set()
        doc_start = 0
        decoded = aliased = 0
        documents = 0
        try:
            while True:
                event: Any = parser.get_event()
                kind = type(event)
                mark = event.start_mark
                if kind is ScalarEvent:
                    if event.end_mark.index - doc_start > limits.max_document_chars:
                        raise self._too_large(mark)
                    anchor = event.anchor
                    go = (STR, event.value) if mode == "check" else None
                    if mode == "load":
                        try:
                            go = _scalar(event)
                        except _Refused as exc:
                            raise _problem(str(exc), mark) from None
                    item = self._scalar_item(event, go)
                    if anchor is not None:
                        anchors[anchor] = _Anchor(item, 1, 0, go)
                    decoded += 1
                    self._add(stack, item, 1, 0, event, go)
                elif kind is MappingStartEvent or kind is SequenceStartEvent:
                    if mark.index - doc_start > limits.max_document_chars:
                        raise self._too_large(mark)
                    if len(stack) > limits.max_depth:  # the document's own frame is one
                        raise self._too_deep(mark)
                    is_mapping = kind is MappingStartEvent
                    if stack and stack[-1].is_mapping and stack[-1].expect_key:
                        raise _problem(
                            "a mapping key is a mapping or a sequence; Kubernetes (kubectl) "
                            "refuses it: use a string key",
                            mark,
                        )
                    frame = _Frame(self._collection(event, is_mapping), is_mapping, None, event)
                    if event.anchor is not None:
                        frame.anchor = event.anchor
                        building.add(event.anchor)
                        anchors.pop(event.anchor, None)
                    if (
                        not is_mapping
                        and len(stack) == 2
                        and stack[1].is_mapping
                        and not stack[1].expect_key
                        and stack[1].key == "items"
                    ):
                        frame.item_lines = []
                    decoded += 1
                    stack.append(frame)
                elif kind is MappingEndEvent or kind is SequenceEndEvent:
                    frame = stack.pop()
                    if mode == "compose":
                        frame.value.end_mark = event.end_mark
                    if frame.anchor is not None:
                        building.discard(frame.anchor)
                        anchors[frame.anchor] = _Anchor(frame.value, frame.size, frame.height)
                    if frame.item_lines is not None:
                        self._item_lines = frame.item_lines
                    self._add(stack, frame.value, frame.size, frame.height, frame.start, None)
                elif kind is AliasEvent:
                    name = event.anchor
                    if name in building:
                        raise _problem(f"the anchor {name!r} contains an alias to itself", mark)
                    target = anchors.get(name)
                    if target is None:
                        raise _problem(f"the alias *{name} names no anchor defined before it", mark)
                    if len(stack) - 1 + target.height > limits.max_depth:
                        raise self._too_deep(mark)
                    self.nodes += target.size
                    if self.nodes > limits.max_nodes:
                        raise self._too_many(mark)
                    decoded += target.size + 1
                    aliased += target.size
                    if (
                        aliased > 100
                        and decoded > 1000
                        and aliased / decoded > _alias_ratio(decoded)
                    ):
                        raise YamlLimitExceeded(
                            f"aliases make up more than {_alias_ratio(decoded):.0%} of the "
                            f"{decoded} nodes of this document once expanded: an alias bomb? "
                            "kubectl (go-yaml) refuses such excessive aliasing, and so does "
                            "Tether; write the repeated parts out instead of using aliases",
                            "alias_ratio",
                            mark.line + 1,
                            mark.column + 1,
                        )
                    value = target.value
                    if mode == "load" and isinstance(value, dict | list):
                        value = copy.deepcopy(value)
                    self._add(stack, value, target.size, target.height, event, target.go)
                elif kind is DocumentStartEvent:
                    documents += 1
                    if documents > limits.max_documents:
                        raise YamlLimitExceeded(
                            f"more than {limits.max_documents} YAML documents "
                            "(YamlLimits.max_documents); split the file",
                            "max_documents",
                            mark.line + 1,
                            mark.column + 1,
                        )
                    doc_start = mark.index
                    anchors.clear()
                    decoded = aliased = 0
                    self._item_lines = []
                    self._root_line = 0
                    stack.append(_Frame([], False, None, event))
                elif kind is DocumentEndEvent:
                    root = stack.pop().value
                    self._document(root[0] if root else None)
                elif event is None or kind is StreamEndEvent:
                    break
        except yaml.YAMLError as exc:
            raise _syntax_problem(exc, self.text) from None
        finally:
            parser.dispose()

    def _scalar_item(self, event: ScalarEvent, go: tuple[str, Any] | None) -> Any:
        if self.mode == "load":
            assert go is not None
            return go[1]
        if self.mode == "compose":
            tag = event.tag or ""
            if tag == "!" or (not tag and not event.implicit[0]):
                tag = STR
            elif not tag:
                tag = _resolve_untyped("", event.value)[0]
            start: Any = event.start_mark
            end: Any = event.end_mark
            return ScalarNode(tag, event.value, start, end, event.style)
        return None

    def _collection(self, event: Any, is_mapping: bool) -> Any:
        if self.mode == "load":
            return {} if is_mapping else []
        if self.mode == "compose":
            node_type = MappingNode if is_mapping else SequenceNode
            default = "tag:yaml.org,2002:map" if is_mapping else "tag:yaml.org,2002:seq"
            tag = event.tag if event.tag not in (None, "!") else default
            return node_type(tag, [], event.start_mark, event.end_mark, event.flow_style)
        return None

    def _add(  # noqa: PLR0912 - one branch per kind of parent, on the hot path
        self,
        stack: list[_Frame],
        item: Any,
        size: int,
        height: int,
        event: Any,
        go: tuple[str, Any] | None,
    ) -> None:
        """Put a finished node into the collection being built around it."""
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise self._too_many(event.start_mark)
        frame = stack[-1]
        frame.size += size
        frame.height = max(frame.height, height + 1)
        if frame.item_lines is not None:
            frame.item_lines.append(event.start_mark.line + 1)
        if self.mode == "load":
            if frame.is_mapping:
                self._add_to_mapping(frame, item, event, go)
            else:
                frame.value.append(self._json(item, go, event))
        elif self.mode == "compose":
            if frame.is_mapping:
                if frame.expect_key:
                    frame.key_event = item
                    frame.key = item.value if isinstance(item, ScalarNode) else ""
                else:
                    frame.value.value.append((frame.key_event, item))
                frame.expect_key = not frame.expect_key
            elif isinstance(frame.value, list):
                frame.value.append(item)
            else:
                frame.value.value.append(item)
        elif frame.is_mapping:
            if frame.expect_key:
                frame.key = go[1] if go is not None else ""
            frame.expect_key = not frame.expect_key

    def _add_to_mapping(
        self, frame: _Frame, item: Any, event: Any, go: tuple[str, Any] | None
    ) -> None:
        if frame.expect_key:
            frame.expect_key = False
            frame.key_event = event
            if go is None:
                raise _problem(
                    "a mapping key is a mapping or a sequence; Kubernetes (kubectl) refuses it: "
                    "use a string key",
                    event.start_mark,
                )
            if _is_merge(event):
                frame.merge = True
                return
            try:
                frame.key = key_string(go[1])
            except _Refused as exc:
                raise _problem(str(exc), event.start_mark) from None
            return
        frame.expect_key = True
        mapping: dict[str, Any] = frame.value
        if frame.merge:
            frame.merge = False
            _merge(mapping, item, event)
            return
        item = self._json(item, go, event)
        key, spelled = frame.key, getattr(frame.key_event, "value", "")
        if key in frame.seen:
            first = frame.seen[key]
            same = first == spelled
            mark = frame.key_event.start_mark
            raise _problem(
                f"invalid YAML: found duplicate key {spelled!r}"
                + ("" if same else f" (for Kubernetes the same key as {first!r})"),
                mark,
                "; remove one of them (kubectl would silently keep the last one)",
            )
        frame.seen[key] = spelled or key
        mapping[key] = item

    @staticmethod
    def _json(item: Any, go: tuple[str, Any] | None, event: Any) -> Any:
        """A value as kubectl sends it (collections are already converted)."""
        if go is None:
            return item
        try:
            return to_json(go[1])
        except _Refused as exc:
            raise _problem(str(exc), event.start_mark) from None

    def _document(self, root: Any) -> None:
        if self.mode == "load":
            line = self._root_line or 1
            try:
                data = to_json(root) if not isinstance(root, dict | list) else root
            except _Refused as exc:
                raise YamlProblem(str(exc), line) from None
            self.documents.append(Document(data, line, self._item_lines_of(data)))
        elif self.mode == "compose":
            self.roots.append(root)

    _root_line = 0
    _item_lines: list[int] = []

    def _item_lines_of(self, data: Any) -> list[int]:
        if isinstance(data, dict) and str(data.get("kind", "")).endswith("List"):
            return list(self._item_lines)
        return []

    def _too_large(self, mark: Any) -> YamlLimitExceeded:
        size = self.limits.max_document_chars
        return YamlLimitExceeded(
            f"this YAML document is larger than {size} characters "
            "(YamlLimits.max_document_chars); split it (the API server takes at most ~3 MB "
            "per object)",
            "max_document_chars",
            mark.line + 1,
            mark.column + 1,
        )

    def _too_deep(self, mark: Any) -> YamlLimitExceeded:
        return YamlLimitExceeded(
            f"nesting deeper than {self.limits.max_depth} levels, aliases expanded "
            "(YamlLimits.max_depth); flatten the document",
            "max_depth",
            mark.line + 1,
            mark.column + 1,
        )

    def _too_many(self, mark: Any) -> YamlLimitExceeded:
        return YamlLimitExceeded(
            f"more than {self.limits.max_nodes} YAML nodes once aliases are expanded "
            "(YamlLimits.max_nodes): an alias bomb, or a text too large to load; write the "
            "repeated parts out, or split the file",
            "max_nodes",
            mark.line + 1,
            mark.column + 1,
        )


def _is_merge(event: Any) -> bool:
    """go-yaml's test for a merge key: a plain ``<<`` (or one tagged ``!!merge``)."""
    return (
        type(event) is ScalarEvent
        and event.value == "<<"
        and (event.implicit[0] or event.tag == MERGE)
    )


def _alias_ratio(decoded: int) -> float:
    """go-yaml v2's allowed share of alias-expanded nodes in a document of ``decoded`` nodes."""
    if decoded <= 400_000:
        return 0.99
    if decoded >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decoded - 400_000) / 3_600_000


def _merge(mapping: dict[str, Any], value: Any, event: Any) -> None:
    """go-yaml v2's ``<<``: a mapping's keys are set now (over earlier ones); in a list of
    mappings the earlier ones win."""
    sources = list(reversed(value)) if isinstance(value, list) else [value]
    for source in sources:
        if not isinstance(source, dict):
            raise _problem(
                "map merge requires map or sequence of maps as the value", event.start_mark
            )
        for key, item in source.items():
            mapping[key] = copy.deepcopy(item) if isinstance(item, dict | list) else item


def _problem(message: str, mark: Any, suffix: str = "") -> YamlProblem:
    return YamlProblem(message + suffix, mark.line + 1, mark.column + 1)


def _syntax_problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        if mark is None:
            return YamlProblem(f"invalid YAML: {problem}")
        return YamlProblem(f"invalid YAML: {problem}", mark.line + 1, mark.column + 1)
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
        return YamlProblem(f"invalid YAML: unacceptable character ({exc.reason})", line, column)
    return YamlProblem(f"invalid YAML: {exc}")


# --- the public surface --------------------------------------------------------------------------


def load_all(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> list[Document]:
    """Every document of a (multi-document) YAML text as kubectl would send it, empty documents
    included as None. ``YamlProblem`` (or ``YamlLimitExceeded``) with line and column."""
    separator = _SEPARATOR.search(text)
    if separator is not None:
        line = text.count("\n", 0, separator.start()) + 1
        raise YamlProblem(
            "a document separator (---) followed by content on the same line; kubectl refuses "
            "it: put the content on the next line",
            line,
            1,
        )
    walk = _LoadWalk(text, limits, "load")
    walk.run()
    return walk.documents


def load(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Any:
    """The single document of ``text`` (None when empty), as ``load_all`` reads it."""
    documents = load_all(text, limits)
    if len(documents) > 1:
        raise YamlProblem("expected one YAML document, found several", documents[1].line)
    return documents[0].data if documents else None


def compose_all(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> list[Node | None]:
    """The node tree of every document (None when empty), with positions, within the limits.
    Scalar tags follow Kubernetes' resolution (``=`` is a string); an alias is the same node
    as its anchor, never a copy."""
    walk = _Walk(text, limits, "compose")
    walk.run()
    return walk.roots


def compose(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Node | None:
    """The node tree of a single-document YAML text (None when empty)."""
    roots = compose_all(text, limits)
    if len(roots) > 1:
        mark = roots[1].start_mark if roots[1] is not None else None
        raise YamlProblem("expected one YAML document, found several", mark.line + 1 if mark else 0)
    return roots[0] if roots else None


def check(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> None:
    """Only the syntax and the limits, for readers that build with their own parser."""
    _Walk(text, limits, "check").run()


class _LoadWalk(_Walk):
    """The load walk, remembering the line each document's content starts on."""

    def _add(
        self,
        stack: list[_Frame],
        item: Any,
        size: int,
        height: int,
        event: Any,
        go: tuple[str, Any] | None,
    ) -> None:
        if len(stack) == 1:
            self._root_line = event.start_mark.line + 1
        super()._add(stack, item, size, height, event, go)
