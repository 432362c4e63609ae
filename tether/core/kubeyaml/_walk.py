"""One pass over libyaml's events: the limits, the expanded size of every anchored node, and
building what the caller asked for (JSON-ready values, positioned nodes, or nothing).

Every limit is checked on an event before anything is built from it. An anchored node's size
and height (nodes and nesting once its own aliases are expanded) are known when it closes, so an
alias costs one addition: an alias bomb is counted, never expanded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

from tether.core.kubeyaml._limits import Document, YamlLimitExceeded, YamlLimits, YamlProblem
from tether.core.kubeyaml._scalars import (
    STR,
    Refused,
    go_scalar,
    is_merge,
    key_string,
    node_tag,
    to_json,
)

try:
    from yaml import CSafeLoader as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Parser  # type: ignore[assignment]

_SIMPLE_KEY_LENGTH = 1024
"""YAML's limit on an implicit key, which libyaml and go-yaml both enforce."""

GoScalar = tuple[str, Any]
"""A scalar as go-yaml decodes it: its resolved tag and Go value."""


class Frame:
    """An open mapping or sequence (or the document itself, holding its one root)."""

    __slots__ = (
        "anchor",
        "expect_key",
        "height",
        "is_mapping",
        "item_lines",
        "key",
        "key_event",
        "key_text",
        "merge",
        "seen",
        "size",
        "start",
        "value",
    )

    def __init__(self, value: Any, is_mapping: bool, start: Any, anchor: str | None) -> None:
        self.value = value
        self.is_mapping = is_mapping
        self.start = start
        self.anchor = anchor
        self.size = 1
        self.height = 1
        self.expect_key = True
        self.key = ""
        self.key_text = ""
        self.key_event: Any = None
        self.merge = False
        self.seen: dict[str, str] = {}
        self.item_lines: list[int] | None = None


@dataclass(frozen=True)
class _Anchor:
    value: Any
    size: int
    height: int
    go: GoScalar | None  # for a scalar (a key may be an alias to one)


class Builder:
    """Makes nothing: the walk only checks syntax and limits (``check``)."""

    def scalar(self, event: Any) -> tuple[Any, GoScalar | None]:
        return None, (STR, event.value)

    def collection(self, event: Any, is_mapping: bool) -> Any:
        return None

    def add(self, frame: Frame, item: Any, event: Any, go: GoScalar | None) -> None:
        """Put a finished node into ``frame`` (before ``frame.expect_key`` flips)."""

    def close(self, frame: Frame, event: Any) -> None:
        """``frame`` has ended at ``event``."""

    def alias(self, value: Any) -> Any:
        return value

    def document(self, root: Any, line: int, item_lines: list[int]) -> None:
        """A document has ended; ``line`` is where its content starts."""


class ValueBuilder(Builder):
    """JSON-ready values as kubectl sends them (``load_all``)."""

    def __init__(self) -> None:
        self.documents: list[Document] = []

    def scalar(self, event: Any) -> tuple[Any, GoScalar | None]:
        try:
            go = go_scalar(event)
        except Refused as exc:
            raise problem_at(str(exc), event.start_mark) from None
        return go[1], go

    def collection(self, event: Any, is_mapping: bool) -> Any:
        return {} if is_mapping else []

    def add(self, frame: Frame, item: Any, event: Any, go: GoScalar | None) -> None:
        if not frame.is_mapping:
            frame.value.append(_sent(item, go, event))
        elif frame.expect_key:
            self._key(frame, event, go)
        elif frame.merge:
            frame.merge = False
            _merge(frame.value, item, event)
        else:
            self._set(frame, _sent(item, go, event))

    @staticmethod
    def _key(frame: Frame, event: Any, go: GoScalar | None) -> None:
        frame.key_event = event
        if go is None:
            raise _collection_key(event.start_mark)
        if is_merge(event):
            frame.merge = True
            return
        try:
            frame.key = key_string(go[1])
        except Refused as exc:
            raise problem_at(str(exc), event.start_mark) from None

    @staticmethod
    def _set(frame: Frame, value: Any) -> None:
        key, spelled = frame.key, getattr(frame.key_event, "value", frame.key)
        first = frame.seen.get(key)
        if first is not None:
            also = "" if first == spelled else f" (for Kubernetes the same key as {first!r})"
            raise problem_at(
                f"invalid YAML: found duplicate key {spelled!r}{also}; remove one of them "
                "(kubectl would silently keep the last one)",
                frame.key_event.start_mark,
            )
        frame.seen[key] = spelled
        frame.value[key] = value

    def alias(self, value: Any) -> Any:
        return copy_json(value)  # go-yaml decodes an alias again: a copy, not a shared object

    def document(self, root: Any, line: int, item_lines: list[int]) -> None:
        data = root
        if not isinstance(root, dict | list):
            try:
                data = to_json(root)
            except Refused as exc:
                raise YamlProblem(str(exc), line) from None
        is_list = isinstance(data, dict) and str(data.get("kind", "")).endswith("List")
        self.documents.append(Document(data, line, item_lines if is_list else []))


class NodeBuilder(Builder):
    """PyYAML nodes with positions and Kubernetes' tags; an alias is its anchor's node."""

    def __init__(self) -> None:
        self.roots: list[Node | None] = []

    def scalar(self, event: Any) -> tuple[Any, GoScalar | None]:
        start: Any = event.start_mark
        end: Any = event.end_mark
        return ScalarNode(node_tag(event), event.value, start, end, event.style), None

    def collection(self, event: Any, is_mapping: bool) -> Any:
        node_type = MappingNode if is_mapping else SequenceNode
        default = "tag:yaml.org,2002:map" if is_mapping else "tag:yaml.org,2002:seq"
        tag = event.tag if event.tag not in (None, "!") else default
        return node_type(tag, [], event.start_mark, event.end_mark, event.flow_style)

    def add(self, frame: Frame, item: Any, event: Any, go: GoScalar | None) -> None:
        if isinstance(frame.value, list):  # the document frame
            frame.value.append(item)
        elif not frame.is_mapping:
            frame.value.value.append(item)
        elif frame.expect_key:
            frame.key_event = item
        else:
            frame.value.value.append((frame.key_event, item))

    def close(self, frame: Frame, event: Any) -> None:
        frame.value.end_mark = event.end_mark

    def document(self, root: Any, line: int, item_lines: list[int]) -> None:
        self.roots.append(root)


class Walk:
    """The pass itself: ``run()`` feeds ``builder`` and raises ``YamlProblem`` (or
    ``YamlLimitExceeded``) with the line and column of the offending event."""

    def __init__(self, text: str, limits: YamlLimits, builder: Builder) -> None:
        self.text, self.limits, self.builder = text, limits, builder
        self.stack: list[Frame] = []
        self.anchors: dict[str, _Anchor] = {}
        self.building: set[str] = set()
        self.nodes = 0  # in the whole text, aliases expanded
        self.documents = 0
        self.document_start = 0
        self.decoded = 0  # in this document, as go-yaml counts for its alias ratio
        self.aliased = 0
        self.root_line = 0
        self.item_lines: list[int] = []
        self._handlers = {
            ScalarEvent: self._scalar,
            MappingStartEvent: self._start,
            SequenceStartEvent: self._start,
            MappingEndEvent: self._end,
            SequenceEndEvent: self._end,
            AliasEvent: self._alias,
            DocumentStartEvent: self._document_start,
            DocumentEndEvent: self._document_end,
        }

    def run(self) -> None:
        parser = _Parser(self.text)
        handlers = self._handlers
        try:
            while True:
                event: Any = parser.get_event()
                if event is None or type(event) is StreamEndEvent:
                    break
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(event)
        except yaml.YAMLError as exc:
            raise syntax_problem(exc, self.text) from None
        finally:
            parser.dispose()

    # -- events -----------------------------------------------------------------------------

    def _scalar(self, event: Any) -> None:
        if event.end_mark.index - self.document_start > self.limits.max_document_chars:
            raise self._too_large(event.start_mark)
        item, go = self.builder.scalar(event)
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor(item, 1, 0, go)
        self.decoded += 1
        self._add(item, 1, 0, event, go)

    def _start(self, event: Any) -> None:
        mark, stack = event.start_mark, self.stack
        if mark.index - self.document_start > self.limits.max_document_chars:
            raise self._too_large(mark)
        if len(stack) > self.limits.max_depth:  # the document's own frame is one of them
            raise self._too_deep(mark)
        parent = stack[-1]
        if parent.is_mapping and parent.expect_key:
            raise _collection_key(mark)
        is_mapping = type(event) is MappingStartEvent
        frame = Frame(self.builder.collection(event, is_mapping), is_mapping, event, event.anchor)
        if event.anchor is not None:
            self.building.add(event.anchor)
            self.anchors.pop(event.anchor, None)
        if len(stack) == 2 and parent.is_mapping and parent.key_text == "items" and not is_mapping:
            frame.item_lines = []
        self.decoded += 1
        stack.append(frame)

    def _end(self, event: Any) -> None:
        frame = self.stack.pop()
        self.builder.close(frame, event)
        if frame.anchor is not None:
            self.building.discard(frame.anchor)
            self.anchors[frame.anchor] = _Anchor(frame.value, frame.size, frame.height, None)
        if frame.item_lines is not None:
            self.item_lines = frame.item_lines
        self._add(frame.value, frame.size, frame.height, frame.start, None)

    def _alias(self, event: Any) -> None:
        name, mark = event.anchor, event.start_mark
        if name in self.building:
            raise problem_at(f"the anchor {name!r} contains an alias to itself", mark)
        target = self.anchors.get(name)
        if target is None:
            raise problem_at(f"the alias *{name} names no anchor defined before it", mark)
        if len(self.stack) - 1 + target.height > self.limits.max_depth:
            raise self._too_deep(mark)
        self.nodes += target.size
        if self.nodes > self.limits.max_nodes:
            raise self._too_many(mark)
        self.decoded += target.size + 1
        self.aliased += target.size
        self._check_alias_ratio(mark)
        self._add(self.builder.alias(target.value), target.size, target.height, event, target.go)

    def _document_start(self, event: Any) -> None:
        mark = event.start_mark
        self.documents += 1
        if self.documents > self.limits.max_documents:
            raise YamlLimitExceeded(
                f"more than {self.limits.max_documents} YAML documents "
                "(YamlLimits.max_documents); split the file",
                "max_documents",
                mark.line + 1,
                mark.column + 1,
            )
        self.document_start = mark.index
        self.anchors.clear()
        self.decoded = self.aliased = 0
        self.root_line = 0
        self.item_lines = []
        self.stack = [Frame([], False, event, None)]

    def _document_end(self, event: Any) -> None:
        root = self.stack.pop().value
        line = self.root_line or event.start_mark.line + 1
        self.builder.document(root[0] if root else None, line, self.item_lines)

    # -- bookkeeping ------------------------------------------------------------------------

    def _add(self, item: Any, size: int, height: int, event: Any, go: GoScalar | None) -> None:
        """Count a finished node and hand it to the builder for the collection around it."""
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise self._too_many(event.start_mark)
        frame = self.stack[-1]
        frame.size += size
        frame.height = max(frame.height, height + 1)
        if frame.item_lines is not None:
            frame.item_lines.append(event.start_mark.line + 1)
        if len(self.stack) == 1:
            self.root_line = event.start_mark.line + 1
        self.builder.add(frame, item, event, go)
        if frame.is_mapping:
            if frame.expect_key:
                frame.key_text = event.value if type(event) is ScalarEvent else ""
            frame.expect_key = not frame.expect_key

    def _check_alias_ratio(self, mark: Any) -> None:
        """go-yaml v2's refusal of "excessive aliasing", which kubectl applies per document."""
        decoded, aliased = self.decoded, self.aliased
        if aliased > 100 and decoded > 1000 and aliased / decoded > _alias_ratio(decoded):
            raise YamlLimitExceeded(
                f"aliases make up more than {_alias_ratio(decoded):.0%} of the {decoded} nodes "
                "of this document once expanded: an alias bomb? kubectl (go-yaml) refuses such "
                "excessive aliasing, and so does Tether; write the repeated parts out instead "
                "of using aliases",
                "alias_ratio",
                mark.line + 1,
                mark.column + 1,
            )

    def _too_large(self, mark: Any) -> YamlLimitExceeded:
        return YamlLimitExceeded(
            f"this YAML document is larger than {self.limits.max_document_chars} characters "
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


def _alias_ratio(decoded: int) -> float:
    """go-yaml v2's allowed share of alias-expanded nodes in a document of ``decoded`` nodes."""
    if decoded <= 400_000:
        return 0.99
    if decoded >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decoded - 400_000) / 3_600_000


def _sent(item: Any, go: GoScalar | None, event: Any) -> Any:
    """A scalar as kubectl sends it (collections are built from sent values already)."""
    if go is None:
        return item
    try:
        return to_json(go[1])
    except Refused as exc:
        raise problem_at(str(exc), event.start_mark) from None


def _merge(mapping: dict[str, Any], value: Any, event: Any) -> None:
    """go-yaml v2's ``<<``: a mapping's keys are set where the merge stands (over earlier keys,
    under later ones); in a list of mappings the earlier ones win."""
    sources = list(reversed(value)) if isinstance(value, list) else [value]
    for source in sources:
        if not isinstance(source, dict):
            raise problem_at(
                "map merge requires map or sequence of maps as the value", event.start_mark
            )
        for key, item in source.items():
            mapping[key] = copy_json(item)


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON-like value, without recursion (any depth, no RecursionError)."""
    if not isinstance(value, dict | list):
        return value
    root: Any = {} if isinstance(value, dict) else []
    pending: list[tuple[Any, Any]] = [(value, root)]
    while pending:
        source, target = pending.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            copied: Any = item
            if isinstance(item, dict | list):
                copied = {} if isinstance(item, dict) else []
                pending.append((item, copied))
            if isinstance(target, dict):
                target[key] = copied
            else:
                target.append(copied)
    return root


def _collection_key(mark: Any) -> YamlProblem:
    return problem_at(
        "a mapping key is a mapping or a sequence; Kubernetes (kubectl) refuses it: use a "
        "string key",
        mark,
    )


def problem_at(message: str, mark: Any) -> YamlProblem:
    return YamlProblem(message, mark.line + 1, mark.column + 1)


def syntax_problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    """PyYAML's error as a ``YamlProblem`` with the line and column it names."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        if mark is None:
            return YamlProblem(f"invalid YAML: {problem}")
        if mark.column > _SIMPLE_KEY_LENGTH:
            problem += (
                f" (if a key is longer than {_SIMPLE_KEY_LENGTH} characters: YAML does not "
                "allow that, kubectl refuses it too; shorten the key)"
            )
        return YamlProblem(f"invalid YAML: {problem}", mark.line + 1, mark.column + 1)
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
        return YamlProblem(f"invalid YAML: unacceptable character ({exc.reason})", line, column)
    return YamlProblem(f"invalid YAML: {exc}")
