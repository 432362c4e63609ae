"""Health rules written as data: the rule library (``rules/*.yaml``) and users' CEL checks.

A rule is an ordered list of checks for some kinds; the first check that matches gives the
verdict, and ``otherwise`` applies when none does. A check is one of:

    condition: Ready            a status.conditions entry (optionally ``status``, ``reasons``,
                                ``reasonPattern``; ``absent: true`` matches when it is missing)
    field: status.phase         a field's value (``values`` or ``pattern``; ``absent: true``)
    when: <CEL expression>      anything else, in CEL (see ``_cel``)

each with ``health`` (Healthy, Progressing or Degraded) and a ``message``: plain text, to which
the condition's reason and message or the field's value are appended, or ``messageExpr``, a CEL
expression. A condition written for an older generation than the object's (its own
``observedGeneration`` is behind) does not describe the current spec: a check matching it gives
Progressing instead of its ``health``.

Users' checks (``spec.health.checks`` of an App, or the cluster-wide ConfigMap) have a shorter
form, three CEL conditions and a message: ``degraded``, ``progressing``, ``healthy`` (tried in
that order) and ``message``. Both forms are compiled here, and any mistake (an unknown key, a
status that does not exist, an expression that does not compile) raises InvalidHealthCheck
naming where the check came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.core import HealthStatus
from tether.errors import TetherError
from tether.health._cel import Activation, CelError, Expression, compile_expression
from tether.health._fields import Condition, Fields
from tether.health._verdict import Verdict, detailed, progressing

_VERDICTS = {
    status.value: status
    for status in (HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED)
}
NOT_OBSERVED = "NotObserved"
"""A check's ``health`` for "its controller has not seen it yet" when the status is there but
says so (the Gateway API's default ``Pending`` condition): handled like an object without
status, grace period included."""


class InvalidHealthCheck(TetherError):
    """A health rule or check could not be compiled; the message says where and why."""


class _Invalid(Exception):
    """A mistake inside one check, before the caller adds where the check came from."""


NOT_OBSERVED_VERDICT = progressing("not observed by its controller yet")

# -- evaluation --------------------------------------------------------------------------------


class Subject:
    """One live object as the checks see it: checked field reads, and CEL variables built once."""

    def __init__(self, live: Fields) -> None:
        self.fields = live
        self._activation: Activation | None = None

    @property
    def activation(self) -> Activation:
        if self._activation is None:
            conditions: dict[str, Any] = {}
            for entry in self.fields.objects("status.conditions"):
                kind = entry.text("type")
                conditions.setdefault(kind, {"status": "", "reason": "", "message": ""})
                conditions[kind] = {**conditions[kind], **entry.body}
            self._activation = Activation(self.fields.body, conditions)
        return self._activation

    def stale(self, condition: Condition) -> bool:
        generation = self.fields.optional_integer("metadata.generation")
        observed = condition.observed_generation
        return generation is not None and observed is not None and observed < generation


@dataclass(frozen=True)
class ConditionTest:
    type: str
    statuses: frozenset[str] = frozenset()  # empty: any status
    reasons: frozenset[str] = frozenset()  # empty: any reason
    reason_pattern: re.Pattern[str] | None = None
    absent: bool = False

    def matches(self, subject: Subject) -> Condition | bool:
        found = subject.fields.condition(self.type)
        if self.absent:
            return found is None
        if found is None or (self.statuses and found.status not in self.statuses):
            return False
        if self.reasons and found.reason not in self.reasons:
            return False
        if self.reason_pattern is not None and not self.reason_pattern.search(found.reason):
            return False
        return found


@dataclass(frozen=True)
class FieldTest:
    path: str
    values: tuple[object, ...] = ()
    pattern: re.Pattern[str] | None = None
    absent: bool = False

    def matches(self, subject: Subject) -> str | bool:
        value = subject.fields.raw(self.path)
        if self.absent:
            return value is None
        if value is None:
            return False
        if self.values and not any(_same(value, wanted) for wanted in self.values):
            return False
        if self.pattern is not None and not (isinstance(value, str) and self.pattern.search(value)):
            return False
        return str(value)


def _same(value: object, wanted: object) -> bool:
    """Equal, and of the same kind (so ``true`` does not equal ``1``)."""
    return type(value) is type(wanted) and value == wanted


@dataclass(frozen=True)
class CelTest:
    expression: Expression

    def matches(self, subject: Subject) -> bool:
        source = self.expression.source
        try:
            result = self.expression.evaluate(subject.activation)
        except CelError as error:
            raise CelError(f"{source!r}: {error}") from None
        if not isinstance(result, bool):
            raise CelError(f"{source!r} gave {result!r}, not true or false")
        return result


@dataclass(frozen=True)
class Check:
    """One line of a rule: a test, and the verdict when it matches."""

    test: ConditionTest | FieldTest | CelTest
    health: HealthStatus | None  # None: not observed yet
    message: str = ""
    message_expr: Expression | None = None

    def judge(self, subject: Subject) -> Verdict | None:
        found = self.test.matches(subject)
        if found is False:
            return None
        if isinstance(found, Condition) and subject.stale(found):
            return progressing(
                f"condition {found.type} was written for generation "
                f"{found.observed_generation}, not the current one"
            )
        if self.health is None:
            return NOT_OBSERVED_VERDICT
        message = self._message(subject, found)
        if not message and self.health is not HealthStatus.HEALTHY:
            message = f"{self.health.value.lower()} by its health rule"
        return Verdict(self.health, message)

    def _message(self, subject: Subject, found: object) -> str:
        if self.message_expr is not None:
            try:
                return str(self.message_expr.evaluate(subject.activation))
            except CelError as error:
                return f"{self.message or 'matched'} (its message failed: {error})"
        if isinstance(found, Condition):
            return detailed(self.message, found.explain()) or found.type
        if isinstance(found, str):
            return detailed(self.message, found)
        return self.message


@dataclass(frozen=True)
class DeclaredRule:
    """A rule made of checks; called like the Python rules (Fields → Verdict)."""

    what: str  # "Certificate.cert-manager.io" or "cert-manager.io" for every kind of a group
    checks: tuple[Check, ...]
    otherwise: Verdict
    expects_status: bool = True
    origin: str = ""

    def __call__(self, live: Fields) -> Verdict:
        subject = Subject(live)
        failures = []
        for check in self.checks:
            try:
                verdict = check.judge(subject)
            except CelError as error:
                failures.append(str(error))
                continue
            if verdict is not None:
                return verdict
        if failures:
            note = f" (a check failed on this object: {failures[0]})"
            return Verdict(self.otherwise.status, self.otherwise.message + note)
        return self.otherwise


# -- compiling ---------------------------------------------------------------------------------


def compile_library(
    document: Mapping[str, Any], origin: str
) -> dict[tuple[str, str], DeclaredRule]:
    """The rules of one library file: ``{(group, kind): DeclaredRule}`` (kind ``*``: any)."""
    rules: dict[tuple[str, str], DeclaredRule] = {}
    for index, raw in enumerate(_list(document.get("rules"), "rules")):
        where = f"{origin}: rules[{index}]"
        try:
            group, kinds, rule = _library_rule(_mapping(raw, "a rule"), origin)
        except _Invalid as error:
            raise InvalidHealthCheck(f"{where}: {error}") from None
        for kind in kinds:
            rules[(group, kind)] = rule
    return rules


def compile_checks(entries: Sequence[object], origin: str) -> dict[tuple[str, str], DeclaredRule]:
    """Users' checks (App or cluster-wide): ``{(group, kind): DeclaredRule}``.

    Raises InvalidHealthCheck naming ``origin`` and the check's position on any mistake.
    """
    rules: dict[tuple[str, str], DeclaredRule] = {}
    for index, raw in enumerate(entries):
        where = f"{origin}: check {index + 1}"
        try:
            entry = _mapping(raw, "a check")
            key = (_text(entry, "group", default=""), _text(entry, "kind"))
            where += f" ({key[1]}.{key[0]})" if key[0] else f" ({key[1]})"
            rules[key] = _user_rule(entry, origin)
        except _Invalid as error:
            raise InvalidHealthCheck(f"{where}: {error}") from None
    return rules


_USER_KEYS = {"group", "kind", "degraded", "progressing", "healthy", "message"}


def _user_rule(entry: Mapping[str, Any], origin: str) -> DeclaredRule:
    _known_keys(entry, _USER_KEYS)
    message = entry.get("message")
    message_expr = _expression(message, "message", "string") if message is not None else None
    checks = []
    for key, health in (
        ("degraded", HealthStatus.DEGRADED),
        ("progressing", HealthStatus.PROGRESSING),
        ("healthy", HealthStatus.HEALTHY),
    ):
        if entry.get(key) is not None:
            test = CelTest(_expression(entry[key], key, "bool"))
            checks.append(
                Check(test, health, f"{health.value} by the check from {origin}", message_expr)
            )
    if not checks:
        raise _Invalid("give at least one of degraded, progressing, healthy (CEL expressions)")
    kind = _text(entry, "kind")
    group = _text(entry, "group", default="")
    what = f"{kind}.{group}" if group else kind
    otherwise = progressing(f"none of the health checks from {origin} matched {what} yet")
    return DeclaredRule(what, tuple(checks), otherwise, expects_status=False, origin=origin)


_RULE_KEYS = {"group", "kinds", "expectsStatus", "checks", "otherwise", "about"}
_CHECK_KEYS = {
    "condition",
    "field",
    "when",
    "status",
    "reasons",
    "reasonPattern",
    "values",
    "pattern",
    "absent",
    "health",
    "message",
    "messageExpr",
}


def _library_rule(raw: Mapping[str, Any], origin: str) -> tuple[str, list[str], DeclaredRule]:
    _known_keys(raw, _RULE_KEYS)
    group = _text(raw, "group", default="")
    kinds = [str(kind) for kind in _list(raw.get("kinds"), "kinds")]
    if not kinds:
        raise _Invalid("kinds: name at least one kind, or *")
    checks = tuple(
        _library_check(_mapping(item, "a check"), index)
        for index, item in enumerate(_list(raw.get("checks"), "checks"))
    )
    otherwise_raw = _mapping(raw.get("otherwise") or {}, "otherwise")
    otherwise_health = _health(otherwise_raw.get("health", "Progressing"))
    default = "" if otherwise_health is HealthStatus.HEALTHY else "no check of its rule matched"
    otherwise = Verdict(otherwise_health, str(otherwise_raw.get("message", default)))
    expects = raw.get("expectsStatus", True)
    if not isinstance(expects, bool):
        raise _Invalid("expectsStatus must be true or false")
    what = group if kinds == ["*"] else f"{'/'.join(kinds)}.{group}"
    return group, kinds, DeclaredRule(what, checks, otherwise, expects, origin)


def _library_check(raw: Mapping[str, Any], index: int) -> Check:
    _known_keys(raw, _CHECK_KEYS)
    try:
        test = _test(raw)
        health = None if raw.get("health") == NOT_OBSERVED else _health(raw.get("health"))
        message = raw.get("message", "")
        if not isinstance(message, str):
            raise _Invalid("message must be text")
        expr = raw.get("messageExpr")
        message_expr = _expression(expr, "messageExpr", "string") if expr is not None else None
    except _Invalid as error:
        raise _Invalid(f"checks[{index}]: {error}") from None
    return Check(test, health, message, message_expr)


def _test(raw: Mapping[str, Any]) -> ConditionTest | FieldTest | CelTest:
    given = [key for key in ("condition", "field", "when") if key in raw]
    if len(given) != 1:
        raise _Invalid("give exactly one of condition, field, when")
    absent = raw.get("absent", False)
    if not isinstance(absent, bool):
        raise _Invalid("absent must be true or false")
    if given == ["when"]:
        return CelTest(_expression(raw["when"], "when", "bool"))
    if given == ["field"]:
        return FieldTest(
            _text(raw, "field"),
            tuple(_list(raw.get("values"), "values")),
            _pattern(raw.get("pattern")),
            absent,
        )
    statuses = [str(s) for s in _list(_as_list(raw.get("status")), "status")]
    return ConditionTest(
        _text(raw, "condition"),
        frozenset(statuses),
        frozenset(str(r) for r in _list(raw.get("reasons"), "reasons")),
        _pattern(raw.get("reasonPattern")),
        absent,
    )


# -- small readers with clear errors -----------------------------------------------------------


def _expression(source: object, key: str, result: str) -> Expression:
    if not isinstance(source, str) or not source.strip():
        raise _Invalid(f"{key} must be a CEL expression (text)")
    try:
        return compile_expression(source, result)
    except CelError as error:
        raise _Invalid(f"{key} {source!r} does not compile: {error}") from None


def _health(value: object) -> HealthStatus:
    if value not in _VERDICTS:
        known = ", ".join([*_VERDICTS, NOT_OBSERVED])
        raise _Invalid(f"health {value!r}: use one of {known}")
    return _VERDICTS[str(value)]


def _pattern(value: object) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(str(value))
    except re.error as error:
        raise _Invalid(f"pattern {value!r} is not a regular expression: {error}") from None


def _known_keys(raw: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _Invalid(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _text(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise _Invalid(f"{key} must be given, as text")
    return value


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid(f"{what} must be a mapping, not {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(f"{what} must be a list")
    return value


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value
