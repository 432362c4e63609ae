"""Findings: what a check reports, and the report ``tether lint`` prints.

A ``Finding`` names one rule, one place (a path relative to the repository root and a 1-based
line, 0 when the whole file is meant), a message, and the object it is about when there is one.
Its ``fingerprint`` is stable across runs and line moves, so an allowlist entry keeps matching;
for secrets it is derived from the secret itself, never from where it sits. Secret values never
appear in a message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is. Errors and warnings fail ``tether lint`` (exit 1); notes do not."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def fails(self) -> bool:
        return self is not Severity.NOTE


@dataclass(frozen=True)
class Rule:
    """A check's identity for people and for CI: ``id`` (kebab-case), a one-line summary, the
    generic fix hint, the default severity and the family it belongs to (``layout``, ``secrets``…)."""

    id: str
    summary: str
    hint: str
    severity: Severity = Severity.ERROR
    family: str = ""


def fingerprint(*parts: str) -> str:
    """A short stable digest of ``parts`` (rule, path, and what identifies the finding)."""
    digest = hashlib.sha256("\x1f".join(("tether-lint", *parts)).encode()).hexdigest()
    return digest[:16]


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_FIELD_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def field_path(parts: Iterable[str | int]) -> str:
    """``spec.containers[0].image``; keys that are not plain words are quoted: ``labels["a/b"]``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    return text.lstrip(".")


def field_parts(field: str) -> list[str | int]:
    """The keys and indexes of a ``field_path`` (the inverse of it)."""
    parts: list[str | int] = []
    for match in _FIELD_PART.finditer(field):
        key, index, quoted = match.groups()
        if key is not None:
            parts.append(key)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(str(json.loads(quoted)))
    return parts


@dataclass(frozen=True)
class Finding:
    """One problem: ``rule`` (a ``Rule.id``), where, what, and how to fix it.

    ``hint`` overrides the rule's generic hint when a check knows better. ``subject`` names the
    object (``Deployment/web/api``) or the value's kind (``GitHub token``) the finding is about;
    ``field`` the object's field (``spec.template.spec.containers[0].image``) when known.
    """

    rule: str
    path: str
    message: str
    line: int = 0
    severity: Severity = Severity.ERROR
    hint: str = ""
    subject: str = ""
    fingerprint: str = ""
    field: str = ""
    """The field of the object the finding is about (``spec.replicas``), when there is one."""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(
                self, "fingerprint", fingerprint(self.rule, self.path, self.subject, self.message)
            )

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def at(self, path: str, line: int) -> Finding:
        return replace(self, path=path, line=line)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity.value,
            "path": self.path,
            "line": self.line,
            "message": self.message,
            "hint": self.hint,
            "fingerprint": self.fingerprint,
        }
        if self.subject:
            data["subject"] = self.subject
        if self.field:
            data["field"] = self.field
        return data


@dataclass(frozen=True)
class Suppressed:
    """A finding the allowlist accepted, with the reason the allowlist gives."""

    finding: Finding
    reason: str


@dataclass(frozen=True)
class Review:
    """Who must review a change: the teams owning the changed files and their CODEOWNERS handles.

    ``unowned`` lists changed files no team owns; ``environments`` and ``layers`` what the change
    reaches (``base`` changes reach every environment)."""

    since: str
    files: tuple[str, ...]
    teams: tuple[str, ...]
    owners: tuple[str, ...]
    unowned: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    reaches_every_environment: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "files": list(self.files),
            "teams": list(self.teams),
            "owners": list(self.owners),
            "unowned": list(self.unowned),
            "environments": list(self.environments),
            "layers": list(self.layers),
            "reachesEveryEnvironment": self.reaches_every_environment,
        }


@dataclass
class Report:
    """Everything one ``tether lint`` run found, in a stable order (path, line, rule)."""

    root: str
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    review: Review | None = None
    checked: dict[str, int] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)

    def sort(self) -> None:
        self.findings.sort(key=lambda f: (f.path, f.line, f.rule, f.message))
        self.suppressed.sort(key=lambda s: (s.finding.path, s.finding.line, s.finding.rule))

    @property
    def failed(self) -> bool:
        return any(finding.severity.fails for finding in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def counts(self) -> dict[Severity, int]:
        return {
            severity: sum(1 for f in self.findings if f.severity is severity)
            for severity in Severity
        }
