"""The one YAML reader of Tether: Kubernetes' meaning of YAML, with limits against hostile input.

    load_all(text, limits) -> [Document]     values exactly as kubectl would send them (JSON-ready)
    compose_all(text, limits) -> [Node]      PyYAML nodes with positions, for tools that need lines
    check(text, limits)                      only the limits (for readers with their own parser)
    dump_all(documents) -> str               the writer: block YAML with no anchors or aliases

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
Modules: ``_scalars`` (go-yaml's resolution and the JSON conversion), ``_walk`` (the event
pass, its limits and builders), ``_limits`` (settings, errors, documents), ``_dump`` (the writer).
See docs/rendering.md and docs/decisions/0006-kubernetes-yaml-loader.md.
"""

from __future__ import annotations

import re
from typing import Any

from yaml.nodes import Node

from tether.core.kubeyaml._dump import dump_all
from tether.core.kubeyaml._limits import (
    DEFAULT_LIMITS,
    Document,
    YamlLimitExceeded,
    YamlLimits,
    YamlProblem,
)
from tether.core.kubeyaml._scalars import (
    BOOL,
    FLOAT,
    INT,
    NULL,
    STR,
    TIMESTAMP,
    key_string,
    resolve,
    to_json,
)
from tether.core.kubeyaml._walk import Builder, NodeBuilder, ValueBuilder, Walk

__all__ = [
    "BOOL",
    "DEFAULT_LIMITS",
    "FLOAT",
    "INT",
    "NULL",
    "STR",
    "TIMESTAMP",
    "Document",
    "YamlLimitExceeded",
    "YamlLimits",
    "YamlProblem",
    "check",
    "compose",
    "compose_all",
    "dump_all",
    "key_string",
    "load",
    "load_all",
    "resolve",
    "to_json",
]

_SEPARATOR = re.compile(r"^---(?![ \t]*(?:#[^\n]*)?\r?$)", re.MULTILINE)


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
    builder = ValueBuilder()
    Walk(text, limits, builder).run()
    return builder.documents


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
    builder = NodeBuilder()
    Walk(text, limits, builder).run()
    return builder.roots


def compose(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Node | None:
    """The node tree of a single-document YAML text (None when empty)."""
    roots = compose_all(text, limits)
    if len(roots) > 1:
        mark = roots[1].start_mark if roots[1] is not None else None
        raise YamlProblem("expected one YAML document, found several", mark.line + 1 if mark else 0)
    return roots[0] if roots else None


def check(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> None:
    """Only the syntax and the limits, for readers that build with their own parser."""
    Walk(text, limits, Builder()).run()
