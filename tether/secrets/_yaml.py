"""Reading and writing YAML the way sops (go yaml.v3) understands it, comments included.

Reading uses PyYAML's scanner, parser and composer only for the *syntax*; what a scalar means
is decided here with go yaml.v3's rules (``_go.resolve_plain``), because sops hashes the typed
value: under PyYAML's YAML 1.1 rules ``on`` would be ``True`` and the MAC would not match.
Comments are captured from the scanner and placed between the entries they sit between, like
sops' tree does: a comment on its own line belongs before the next entry (or, when the next
entry is less indented, at the end of the collection it is indented into); a comment after a
value on the same line is ``inline`` and belongs to that entry.

Writing produces block-style YAML indented by four like sops. A string is written plain only
when go yaml.v3, PyYAML (YAML 1.1) and YAML 1.2 all read it back as that same string; otherwise
it is a literal block (multi-line text) or double-quoted.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import DocumentStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver, Resolver
from yaml.scanner import Scanner

from tether.core import kubeyaml
from tether.errors import SecretsError
from tether.secrets import _go
from tether.secrets._tree import Branch, Comment, Pair, Timestamp

INDENT = 4
MAX_KEY_LENGTH = 1000

_PLAIN = "tether:plain"
_QUOTED = "tether:quoted"
_STR = "tag:yaml.org,2002:str"
_TAGS_RESOLVED_AS = {
    "tag:yaml.org,2002:int": int,
    "tag:yaml.org,2002:float": float,
    "tag:yaml.org,2002:bool": bool,
    "tag:yaml.org,2002:null": type(None),
    "tag:yaml.org,2002:timestamp": Timestamp,
}
_BREAKS = "\0\r\n\x85\u2028\u2029"


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RawComment:
    line: int
    column: int
    text: str
    inline: bool


class _CommentScanner(Scanner):
    """PyYAML's scanner, noting every comment it skips (with its position)."""

    def __init__(self) -> None:
        super().__init__()
        self.comments: list[_RawComment] = []
        self._line_has_content = False

    def _skip_comment(self) -> None:
        line, column = self.line, self.column  # type: ignore[attr-defined]
        start = self.pointer + 1  # type: ignore[attr-defined]
        while self.peek() not in _BREAKS:  # type: ignore[attr-defined]
            self.forward()  # type: ignore[attr-defined]
        text = self.buffer[start : self.pointer]  # type: ignore[attr-defined]
        line_start = self.buffer.rfind("\n", 0, start - 1) + 1  # type: ignore[attr-defined]
        before = self.buffer[line_start : start - 1]  # type: ignore[attr-defined]
        inline = bool(before.strip(" \t\ufeff"))
        self.comments.append(_RawComment(line, column, text, inline))

    def scan_to_next_token(self) -> None:
        if self.index == 0 and self.peek() == "\ufeff":  # type: ignore[attr-defined]
            self.forward()  # type: ignore[attr-defined]
        found = False
        while not found:
            while self.peek() == " ":  # type: ignore[attr-defined]
                self.forward()  # type: ignore[attr-defined]
            if self.peek() == "#":  # type: ignore[attr-defined]
                self._skip_comment()
            if self.scan_line_break():  # type: ignore[no-untyped-call]
                if not self.flow_level:
                    self.allow_simple_key = True
            else:
                found = True

    def scan_block_scalar_ignored_line(self, start_mark: Any) -> None:
        while self.peek() == " ":  # type: ignore[attr-defined]
            self.forward()  # type: ignore[attr-defined]
        if self.peek() == "#":  # type: ignore[attr-defined]
            self._skip_comment()
        super().scan_block_scalar_ignored_line(start_mark)

    def scan_directive_ignored_line(self, start_mark: Any) -> None:
        while self.peek() == " ":  # type: ignore[attr-defined]
            self.forward()  # type: ignore[attr-defined]
        if self.peek() == "#":  # type: ignore[attr-defined]
            self._skip_comment()
        super().scan_directive_ignored_line(start_mark)


class _DocumentComposer(Composer):
    """PyYAML's composer, noting where each document starts."""

    def __init__(self) -> None:
        super().__init__()
        self.document_starts: list[tuple[int, int]] = []

    def compose_document(self) -> Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, DocumentStartEvent) and event.start_mark is not None:
            self.document_starts.append((event.start_mark.line, event.start_mark.column))
        return super().compose_document()


class _TagResolver(BaseResolver):
    """Marks scalars as plain or quoted instead of typing them; ``_go`` types them later."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _QUOTED
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]


class _Loader(Reader, _CommentScanner, Parser, _DocumentComposer, _TagResolver):
    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        _CommentScanner.__init__(self)
        Parser.__init__(self)
        _DocumentComposer.__init__(self)
        _TagResolver.__init__(self)


@dataclass(eq=False)
class _Container:
    """A mapping or sequence being built, with what comment placement needs to know."""

    value: Branch | list[Any]
    path: tuple[str, ...]
    indent: int
    parent: _Container | None
    items: list[Any] = field(default_factory=list)  # Pairs, or list values, in order

    def chain(self) -> list[_Container]:
        """This container and its ancestors, innermost first."""
        chain: list[_Container] = []
        node: _Container | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain


@dataclass(frozen=True)
class _Item:
    position: tuple[int, int]
    container: _Container
    index: int
    empty_flow_value: _Container | None = None
    """For ``key: {}`` / ``key: []``: the empty collection (a comment after it goes in it)."""


class _Builder:
    """Turns one document's node tree into a ``Branch``, recording where every item starts."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[_Item] = []
        self.containers: list[_Container] = []
        self.last_container: _Container | None = None
        self._built: set[int] = set()
        self._building: set[int] = set()

    def fail(self, node: Node, problem: str) -> SecretsError:
        mark = node.start_mark
        return SecretsError(f"{self.source}:{mark.line + 1}:{mark.column + 1}: {problem}")

    def document(self, node: Node) -> tuple[Branch, _Container]:
        if isinstance(node, ScalarNode) and node.tag == _PLAIN and self.scalar(node) is None:
            root = _Container(Branch(), (), node.start_mark.column, None)
            self.containers.append(root)
            return root.value, root  # type: ignore[return-value]
        if isinstance(node, SequenceNode):
            raise self.fail(node, "YAML documents that are sequences are not supported by SOPS")
        if not isinstance(node, MappingNode):
            raise self.fail(node, "YAML documents that are single values are not supported by SOPS")
        branch = self.value(node, (), None)
        return branch, self.containers[0]

    def value(self, node: Node, path: tuple[str, ...], parent: _Container | None) -> Any:
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        key = id(node)
        if key in self._building:
            raise self.fail(node, "a YAML alias refers to a node that contains it")
        record = key not in self._built  # an alias re-expands a node: no positions for it
        self._built.add(key)
        self._building.add(key)
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path, parent, record)
            if isinstance(node, SequenceNode):
                return self.sequence(node, path, parent, record)
        finally:
            self._building.discard(key)
        raise self.fail(node, "unsupported YAML node")  # pragma: no cover - PyYAML has 3 kinds

    def container(
        self,
        node: Node,
        value: Branch | list[Any],
        path: tuple[str, ...],
        parent: Any,
        record: bool,
    ) -> _Container:
        container = _Container(value, path, node.start_mark.column, parent)
        if record:
            self.containers.append(container)
        self.last_container = container
        return container

    def note(self, node: Node, container: _Container, record: bool, column: int = -1) -> None:
        """Record where an item starts (for a block sequence item: where its ``-`` is)."""
        if record:
            position = (node.start_mark.line, column if column >= 0 else node.start_mark.column)
            self.items.append(_Item(position, container, len(container.items)))

    def mapping(
        self, node: MappingNode, path: tuple[str, ...], parent: _Container | None, record: bool
    ) -> Branch:
        if node.tag not in (BaseResolver.DEFAULT_MAPPING_TAG,):
            raise self.fail(node, f"the YAML tag {node.tag} is not supported")
        branch = Branch()
        container = self.container(node, branch, path, parent, record)
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.key(key_node)
            if key in seen:
                raise self.fail(key_node, f"key {key!r} appears twice in one mapping")
            seen.add(key)
            self.note(key_node, container, record)
            pair = Pair(key, None)
            container.items.append(pair)
            pair.value = self.value(value_node, (*path, key), container)
            if record and _is_empty_flow(value_node):
                self.items[-1] = replace(self.items[-1], empty_flow_value=self.last_container)
        branch.entries = list(container.items)
        return branch

    def sequence(
        self, node: SequenceNode, path: tuple[str, ...], parent: _Container | None, record: bool
    ) -> list[Any]:
        if node.tag not in (BaseResolver.DEFAULT_SEQUENCE_TAG,):
            raise self.fail(node, f"the YAML tag {node.tag} is not supported")
        items: list[Any] = []
        container = self.container(node, items, path, parent, record)
        dash = -1 if node.flow_style else container.indent
        for item_node in node.value:
            self.note(item_node, container, record, dash)
            container.items.append(self.value(item_node, path, container))
        items[:] = container.items
        return items

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise self.fail(node, "a mapping key is a collection; SOPS supports string keys only")
        value = self.scalar(node)
        if node.tag == _PLAIN and node.value == "<<":
            raise self.fail(node, "YAML merge keys (<<) are not supported in SOPS files")
        if not isinstance(value, str):
            raise self.fail(
                node,
                f"the key {node.value!r} is a {_type_name(value)}; SOPS supports string keys "
                "only (quote it)",
            )
        return value

    def scalar(self, node: ScalarNode) -> Any:
        if node.tag == _PLAIN:
            try:
                return _go.resolve_plain(node.value)
            except _go.UnsupportedScalar:
                raise self.fail(
                    node, "an integer above 9223372036854775807 is not supported by SOPS"
                ) from None
        if node.tag in (_QUOTED, _STR, "!"):
            return node.value
        expected = _TAGS_RESOLVED_AS.get(node.tag)
        if expected is None:
            raise self.fail(node, f"the YAML tag {node.tag} is not supported")
        try:
            value = _go.resolve_plain(node.value)
        except _go.UnsupportedScalar:
            value = None
        if expected is float and type(value) is int:
            return float(value)
        if type(value) is not expected:
            raise self.fail(node, f"the value tagged {node.tag} is not of that type")
        return value


def _is_empty_flow(node: Node) -> bool:
    return isinstance(node, MappingNode | SequenceNode) and bool(node.flow_style) and not node.value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Timestamp):
        return "timestamp"
    return type(value).__name__


def load_yaml(text: str, source: str) -> list[Branch]:
    """Every document of ``text`` (each must be a mapping), comments in place.

    ``kubeyaml.check`` first applies Tether's YAML limits (alias bombs, depth, size), which the
    pure-Python reader below, needed for the comments, would not survive."""
    try:
        kubeyaml.check(text)
    except kubeyaml.YamlLimitExceeded as error:
        raise SecretsError(error.at(source)) from None
    except kubeyaml.YamlProblem:
        pass  # a syntax error: the reader below reports it in its own words
    loader = _Loader(text)
    roots: list[Node] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                roots.append(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise SecretsError(f"{where}: not valid YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        position = getattr(error, "position", None)
        raise SecretsError(
            f"{source}: not valid YAML: unacceptable character at position {position}"
        ) from None
    finally:
        loader.dispose()
    documents: list[Branch] = []
    starts = loader.document_starts
    for index, root in enumerate(roots):
        builder = _Builder(source)
        branch, container = builder.document(root)
        low = starts[index] if index and index < len(starts) else (0, 0)
        high = starts[index + 1] if index + 1 < len(starts) else (1 << 62, 0)
        comments = [c for c in loader.comments if low <= (c.line, c.column) < high]
        _place_comments(comments, builder.items, container)
        documents.append(branch)
    return documents


def _place_comments(comments: list[_RawComment], items: list[_Item], root: _Container) -> None:
    """Put each comment between the entries it sits between (see the module docstring)."""
    items = sorted(items, key=lambda item: item.position)
    positions = [item.position for item in items]
    before: dict[tuple[int, int], list[Comment]] = {}
    at_end: dict[int, list[Comment]] = {}
    containers: dict[int, _Container] = {id(root): root}
    for raw in comments:
        cut = bisect.bisect_left(positions, (raw.line, raw.column))
        previous = items[cut - 1] if cut else None
        following = items[cut] if cut < len(items) else None
        comment = Comment(raw.text, inline=raw.inline and previous is not None)
        target = _comment_target(raw, comment.inline, previous, following, root)
        if isinstance(target, _Item):
            before.setdefault((id(target.container), target.index), []).append(comment)
            containers[id(target.container)] = target.container
        else:
            at_end.setdefault(id(target), []).append(comment)
            containers[id(target)] = target
    for key, container in containers.items():
        merged: list[Any] = []
        for index, item in enumerate(container.items):
            merged += before.get((key, index), [])
            merged.append(item)
        merged += at_end.get(key, [])
        if isinstance(container.value, Branch):
            container.value.entries = merged
        else:
            container.value[:] = merged


def _comment_target(
    raw: _RawComment,
    inline: bool,
    previous: _Item | None,
    following: _Item | None,
    root: _Container,
) -> _Item | _Container:
    """The item a comment goes before, or the container it ends."""
    if inline and previous is not None:
        # go yaml.v3 puts a comment after `key: {}` inside the empty collection.
        return previous.empty_flow_value or previous
    if previous is None:
        return following if following is not None else root
    chain = previous.container.chain()
    if following is None:
        return _indented_into(chain, raw.column) or root
    if following.container in chain and raw.column > following.position[1]:
        deeper = chain[: chain.index(following.container)]
        return _indented_into(deeper, raw.column) or (deeper[-1] if deeper else following)
    return following


def _indented_into(chain: list[_Container], column: int) -> _Container | None:
    """The innermost container of ``chain`` whose items are indented no deeper than ``column``."""
    for container in chain:
        if container.indent <= column:
            return container
    return None


def container_paths(documents: list[Branch]) -> list[tuple[str, ...]]:
    """The key path of every mapping and sequence, for comments whose place was ambiguous."""
    paths: dict[tuple[str, ...], None] = {(): None}

    def visit(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, Branch):
            paths[path] = None
            for pair in value.pairs():
                visit(pair.value, (*path, pair.key))
        elif isinstance(value, list):
            paths[path] = None
            for item in value:
                visit(item, path)

    for document in documents:
        visit(document, ())
    return list(paths)


# --- writing -------------------------------------------------------------------------------------


def dump_yaml(documents: list[Branch]) -> str:
    """Block-style YAML of ``documents``, separated by ``---`` like sops writes them."""
    texts = []
    for document in documents:
        if any(True for _ in document.pairs()):
            lines = _mapping_lines(document, 0)
        else:
            lines = [*_comment_lines(document.entries, 0), "{}"]
        texts.append("\n".join(lines) + "\n")
    return "---\n".join(texts)


def dump_yaml_value(value: Any) -> str:
    """One value on its own (a list, or a scalar as it would follow ``key:``)."""
    if isinstance(value, list) and any(not isinstance(item, Comment) for item in value):
        return "\n".join(_sequence_lines(value, 0)) + "\n"
    head, tail = _value_text(value, -INDENT)
    return "\n".join([head, *tail]) + "\n"


def _comment_lines(entries: list[Any], indent: int) -> Iterator[str]:
    for entry in entries:
        if isinstance(entry, Comment):
            for part in _comment_parts(entry.text):
                yield " " * indent + "#" + part


def _comment_parts(text: str) -> list[str]:
    """A comment's text as lines (a decrypted comment could hold a line break)."""
    parts = [text]
    for brk in _BREAKS:
        parts = [piece for part in parts for piece in part.split(brk)]
    return parts


def _column(prefix: str) -> int:
    """Where the first ``-`` of a sequence item prefix such as ``"    - - "`` is."""
    return len(prefix) - len(prefix.lstrip(" "))


def _is_block(value: Any) -> bool:
    """Whether ``value`` is written as an indented block (a non-empty collection)."""
    if isinstance(value, Pair):
        value = value.value
    if isinstance(value, Branch):
        return any(True for _ in value.pairs())
    return isinstance(value, list) and any(not isinstance(item, Comment) for item in value)


def _hoist_foot_comments(entries: list[Any]) -> list[Any]:
    """The entries, with comments that end a collection moved before its last entry when that
    entry is itself a nested block: go yaml.v3 (sops) would read a comment placed after nested
    content as part of the nested content, so its encryption (bound to the path of the
    collection it is in) would not match."""
    last = max((i for i, e in enumerate(entries) if not isinstance(e, Comment)), default=-1)
    if last < 0 or last == len(entries) - 1 or not _is_block(entries[last]):
        return entries
    return [*entries[:last], *entries[last + 1 :], entries[last]]


def _mapping_lines(branch: Branch, indent: int, first_prefix: str | None = None) -> list[str]:
    """Lines of a non-empty mapping at ``indent``; ``first_prefix`` starts its first entry
    instead of the indentation (a ``- `` when the mapping is a sequence item)."""
    lines: list[str] = []
    inline: list[Comment] = []
    head_indent = indent if first_prefix is None else _column(first_prefix)
    for entry in _hoist_foot_comments(branch.entries):
        if isinstance(entry, Comment):
            if entry.inline:
                inline.append(entry)
            else:
                lines += _comment_lines([entry], head_indent)
            continue
        key = _key_text(entry.key)
        head, tail = _value_text(entry.value, indent)
        if inline and _has_comment_inside(entry.value):
            lines += _comment_lines(inline, head_indent)  # the line has its comment already
            inline = []
        prefix = " " * indent if first_prefix is None else first_prefix
        first_prefix = None
        head_indent = indent
        line = f"{prefix}{key}:" + (f" {head}" if head else "")
        lines += _with_inline(line, inline, indent)
        inline = []
        lines += tail
    lines += _comment_lines(inline, indent)
    return lines


def _sequence_lines(items: list[Any], indent: int, first_prefix: str | None = None) -> list[str]:
    lines: list[str] = []
    inline: list[Comment] = []
    head_indent = indent if first_prefix is None else _column(first_prefix)
    for item in _hoist_foot_comments(items):
        if isinstance(item, Comment):
            if item.inline:
                inline.append(item)
            else:
                lines += _comment_lines([item], head_indent)
            continue
        prefix = (" " * indent if first_prefix is None else first_prefix) + "- "
        first_prefix = None
        head_indent = indent
        if isinstance(item, Branch) and any(True for _ in item.pairs()):
            block = _mapping_lines(item, indent + 2, first_prefix=prefix)
        elif isinstance(item, list) and any(not isinstance(i, Comment) for i in item):
            block = _sequence_lines(item, indent + 2, first_prefix=prefix)
        else:
            head, tail = _value_text(item, indent)
            block = [prefix + head, *tail]
        first = next(i for i, line in enumerate(block) if not _is_comment_line(line))
        block[first : first + 1] = _with_inline(block[first], inline, indent)
        inline = []
        lines += block
    lines += _comment_lines(inline, indent)
    return lines


def _is_comment_line(line: str) -> bool:
    return line.lstrip(" ").startswith("#")


def _with_inline(line: str, inline: list[Comment], indent: int) -> list[str]:
    """``line`` with the first inline comment after it; any others go on lines before it."""
    if not inline:
        return [line]
    extra = list(_comment_lines(inline[1:], indent))
    text = " ".join(_comment_parts(inline[0].text))
    return [*extra, f"{line} #{text}"]


def _value_text(value: Any, indent: int) -> tuple[str, list[str]]:
    """What follows ``key:`` (or ``- ``) on its line, and the lines after it."""
    if isinstance(value, Branch):
        if any(True for _ in value.pairs()):
            return "", _mapping_lines(value, indent + INDENT)
        return _empty("{}", value.entries, indent)
    if isinstance(value, list):
        if any(not isinstance(item, Comment) for item in value):
            return "", _sequence_lines(value, indent + INDENT)
        return _empty("[]", value, indent)
    return _scalar_text(value, indent)


def _empty(text: str, comments: list[Any], indent: int) -> tuple[str, list[str]]:
    """An empty collection; a comment in it goes after it on its line (where go yaml.v3 reads
    a comment as being inside it). Further ones cannot be placed in it and follow below."""
    if not comments:
        return text, []
    first = " ".join(_comment_parts(comments[0].text))
    return f"{text} #{first}", list(_comment_lines(comments[1:], indent + INDENT))


def _has_comment_inside(value: Any) -> bool:
    if isinstance(value, Branch):
        return not any(True for _ in value.pairs()) and bool(value.entries)
    return isinstance(value, list) and bool(value) and all(isinstance(i, Comment) for i in value)


def _scalar_text(value: Any, indent: int) -> tuple[str, list[str]]:
    if value is None:
        return "null", []
    if value is True:
        return "true", []
    if value is False:
        return "false", []
    if isinstance(value, int):
        return str(value), []
    if isinstance(value, float):
        return _float_text(value), []
    if isinstance(value, Timestamp):
        return value.text, []
    if isinstance(value, str):
        if _plain_ok(value):
            return value, []
        if _literal_ok(value):
            return _literal(value, indent)
        return _double_quoted(value), []
    raise SecretsError(f"cannot write a {type(value).__name__} as YAML")  # pragma: no cover


def _key_text(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH:
        raise SecretsError(f"a key longer than {MAX_KEY_LENGTH} characters cannot be written")
    return key if _plain_ok(key) else _double_quoted(key)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if exponent and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def _printable(char: str) -> bool:
    code = ord(char)
    return (
        0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or 0x10000 <= code <= 0x10FFFF
    )


_PLAIN_FIRST = set("-?:,[]{}#&*!|>'\"%@`.~ ")
_YAML11 = Resolver()
_YAML11_BOOLEANS = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO"}
_YAML11_BOOLEANS |= {"on", "On", "ON", "off", "Off", "OFF"}
"""YAML 1.1 booleans (go-yaml v2, which kubectl reads with, knows ``y`` and ``n`` too)."""


def _plain_ok(text: str) -> bool:
    """Whether ``text`` unquoted reads back as this very string for every YAML reader."""
    if not text or text != text.strip() or text[0] in _PLAIN_FIRST or text == "<<":
        return False
    if ": " in text or " #" in text or text.endswith(":") or text in _YAML11_BOOLEANS:
        return False
    if not all(_printable(char) for char in text):
        return False
    try:
        if _go.resolve_plain(text) != text or not isinstance(_go.resolve_plain(text), str):
            return False
    except _go.UnsupportedScalar:
        return False
    resolved = _YAML11.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return bool(resolved == _STR)


def _literal_ok(text: str) -> bool:
    if "\n" not in text or not text.strip():
        return False
    return all(_printable(char) or char in "\t\n" for char in text)


def _literal(text: str, indent: int) -> tuple[str, list[str]]:
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    indicator = str(INDENT) if body.lstrip("\n").startswith((" ", "\t")) or body[:1] == "\n" else ""
    pad = " " * (indent + INDENT)
    lines = [pad + line if line else "" for line in body.split("\n")]
    lines += [""] * (trailing - 1 if trailing > 1 else 0)
    return f"|{indicator}{chomp}", lines


_ESCAPES = {
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    '"': '\\"',
    "\\": "\\\\",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def _double_quoted(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _printable(char):
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02X}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(f"\\U{ord(char):08X}")
    return '"' + "".join(out) + '"'
