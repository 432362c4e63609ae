"""What one YAML text may ask of Tether (``YamlLimits``), the errors of reading it, and the
documents it reads into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final


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
