"""Parsing YAML and JSON text into documents that remember the line they start on.

The YAML loader is PyYAML's safe loader (the libyaml-backed one when available, for speed),
adjusted to how Kubernetes reads manifests:

- unquoted dates such as ``2024-01-01`` stay strings (Kubernetes does not turn them into
  timestamps, and a ``datetime`` could not be sent to the API anyway);
- a key repeated in one mapping is an error instead of silently keeping the last value;
- tags that produce values JSON cannot carry (``!!binary``, ``!!set``, ``!!omap``, ``!!pairs``)
  are errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_NOT_JSON_TAGS = (
    "tag:yaml.org,2002:binary",
    "tag:yaml.org,2002:set",
    "tag:yaml.org,2002:omap",
    "tag:yaml.org,2002:pairs",
)


class ManifestLoader(_SafeLoader):
    """The safe loader, with the three adjustments described in the module docstring."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}


def _refuse_tag(loader: yaml.BaseLoader, node: Node) -> Any:
    raise ConstructorError(
        None, None, f"the {node.tag} tag is not supported in Kubernetes manifests", node.start_mark
    )


for _tag in _NOT_JSON_TAGS:
    ManifestLoader.add_constructor(_tag, _refuse_tag)


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


class SyntaxProblem(Exception):
    """Text that is not valid YAML or JSON, with the 1-based line and column (0 if unknown)."""

    def __init__(self, problem: str, line: int = 0, column: int = 0) -> None:
        super().__init__(problem)
        self.problem, self.line, self.column = problem, line, column

    def at(self, label: str) -> str:
        """``file:line:column: problem`` (or ``file: problem`` when the position is unknown)."""
        if self.line:
            return f"{label}:{self.line}:{self.column}: {self.problem}"
        return f"{label}: {self.problem}"


def load_yaml(text: str) -> list[Document]:
    """Every document of a (multi-document) YAML text, empty documents included as None."""
    loader = ManifestLoader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() said there is one
                break
            data = loader.construct_document(node)
            document = Document(data, node.start_mark.line + 1)
            if _is_list(data):
                document.item_lines = _item_lines(node)
            documents.append(document)
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text) from exc
    finally:
        loader.dispose()
    return documents


def load_json(text: str) -> Document:
    """The single JSON value of ``text`` (an object or a List)."""
    try:
        data = json.loads(text, object_pairs_hook=_unique_object, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise SyntaxProblem(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from exc
    except ValueError as exc:
        raise SyntaxProblem(f"invalid JSON: {exc}") from exc
    stripped = text.lstrip()
    document = Document(data, text[: len(text) - len(stripped)].count("\n") + 1)
    if _is_list(data):
        document.item_lines = _json_item_lines(text)
    return document


def compose(text: str) -> Node | None:
    """The node tree of a single-document YAML text (None when empty), with positions."""
    loader = ManifestLoader(text)
    try:
        return loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text) from exc
    finally:
        loader.dispose()


def _is_list(data: Any) -> bool:
    return isinstance(data, dict) and str(data.get("kind", "")).endswith("List")


def _item_lines(node: Node) -> list[int]:
    if not isinstance(node, MappingNode):
        return []
    for key_node, value_node in node.value:
        if key_node.value == "items" and isinstance(value_node, SequenceNode):
            return [item.start_mark.line + 1 for item in value_node.value]
    return []


def _json_item_lines(text: str) -> list[int]:
    """Best effort: JSON is (nearly always) YAML, whose parser knows where each item starts."""
    try:
        node = compose(text)
    except SyntaxProblem:
        return []
    return _item_lines(node) if node is not None else []


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in an object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _yaml_problem(exc: yaml.YAMLError, text: str) -> SyntaxProblem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        if mark is None:
            return SyntaxProblem(f"invalid YAML: {problem}")
        return SyntaxProblem(f"invalid YAML: {problem}", mark.line + 1, mark.column + 1)
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
        return SyntaxProblem(f"invalid YAML: unacceptable character ({exc.reason})", line, column)
    return SyntaxProblem(f"invalid YAML: {exc}")
