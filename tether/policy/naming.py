"""Names Kubernetes would refuse (DNS-1123), and names that break tether.yaml's naming rules.

Which DNS rule applies depends on the kind, as the API server decides it: Namespaces are
DNS-1123 labels, Services DNS-1035 labels (they must start with a letter), RBAC objects only
need to be valid path segments (``system:controller:x`` is fine), everything else is a DNS-1123
subdomain. Label keys and values are checked too; the API server refuses those as well.
"""

from __future__ import annotations

import re
from typing import Any

from tether.core import Manifest
from tether.policy.config import RepoConfig
from tether.policy.findings import Finding, field_path
from tether.policy.globs import matches
from tether.policy.layout import Unit
from tether.policy.patterns import compile_pattern
from tether.policy.rules import RULES

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def dns1123_label(value: str) -> str:
    """Why ``value`` is not a DNS-1123 label ("" when it is one)."""
    if len(value) > 63:
        return "is longer than 63 characters"
    if not _LABEL.fullmatch(value):
        return (
            "must be lowercase letters, digits and '-', starting and ending with a letter or digit"
        )
    return ""


def dns1123_subdomain(value: str) -> str:
    if len(value) > 253:
        return "is longer than 253 characters"
    if not _SUBDOMAIN.fullmatch(value):
        return (
            "must be lowercase letters, digits, '-' and '.', each part starting and ending with "
            "a letter or digit"
        )
    return ""


def dns1035_label(value: str) -> str:
    if len(value) > 63:
        return "is longer than 63 characters"
    if not _DNS1035.fullmatch(value):
        return "must be lowercase letters, digits and '-', starting with a letter"
    return ""


def name_problem(kind: str, name: str) -> str:
    """Why the API server would refuse ``name`` for ``kind`` ("" when it would not)."""
    if kind == "Namespace":
        return dns1123_label(name)
    if kind == "Service":
        return dns1035_label(name)
    if kind in _RBAC_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            return "must not be '.' or '..' nor contain '/' or '%'"
        return ""
    return dns1123_subdomain(name)


def label_problem(key: str, value: Any) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix and dns1123_subdomain(prefix):
        return f"label key {key!r}: its prefix {dns1123_subdomain(prefix)}"
    if len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return f"label key {key!r} is not a qualified name (at most 63 of A-Z a-z 0-9 - _ .)"
    text = "" if value is None else str(value)
    if len(text) > 63 or not _LABEL_VALUE.fullmatch(text):
        return (
            f"the value of label {key!r} must be at most 63 of A-Z a-z 0-9 - _ ., starting and "
            "ending with a letter or digit"
        )
    return ""


def check(unit: Unit, config: RepoConfig) -> list[Finding]:
    """DNS-1123 and pattern findings for every object of ``unit``."""
    findings: list[Finding] = []
    for manifest in unit.manifests:
        findings += _dns(manifest)
        findings += _patterns(manifest, unit, config)
    return findings


def _finding(rule_id: str, manifest: Manifest, message: str, field: str) -> Finding:
    rule = RULES[rule_id]
    return Finding(
        rule_id,
        manifest.source.path,
        message,
        manifest.source.line,
        rule.severity,
        rule.hint,
        subject=str(manifest.ref),
        field=field,
    )


def _dns(manifest: Manifest) -> list[Finding]:
    findings: list[Finding] = []
    ref = manifest.ref
    problem = name_problem(ref.kind, ref.name)
    if problem:
        findings.append(
            _finding(
                "naming-dns1123", manifest, f"{ref}: name {ref.name!r} {problem}", "metadata.name"
            )
        )
    if ref.namespace and dns1123_label(ref.namespace):
        findings.append(
            _finding(
                "naming-dns1123",
                manifest,
                f"{ref}: namespace {ref.namespace!r} {dns1123_label(ref.namespace)}",
                "metadata.namespace",
            )
        )
    labels = (manifest.body.get("metadata") or {}).get("labels") or {}
    if isinstance(labels, dict):
        for key, value in labels.items():
            problem = label_problem(str(key), value)
            if problem:
                findings.append(
                    _finding(
                        "naming-dns1123",
                        manifest,
                        f"{ref}: {problem}",
                        field_path(("metadata", "labels", str(key))),
                    )
                )
    return findings


def _patterns(manifest: Manifest, unit: Unit, config: RepoConfig) -> list[Finding]:
    findings: list[Finding] = []
    place = unit.place
    app = config.app(place.app) if place.app else None
    values = {"app": place.app, "env": place.environment, "team": app.team if app else ""}
    values = {key: value for key, value in values.items() if value}
    ref = manifest.ref
    for rule in config.naming:
        if rule.kinds and ref.kind not in rule.kinds:
            continue
        if rule.paths and not any(matches(glob, f"{unit.path}/") for glob in rule.paths):
            continue
        needed = set(re.findall(r"<(app|env|team)>", rule.pattern))
        if not needed <= set(values):
            continue
        if not compile_pattern(rule.pattern, values).fullmatch(ref.name):
            expected = rule.pattern
            for key, value in values.items():
                expected = expected.replace(f"<{key}>", value)
            why = f" ({rule.description})" if rule.description else ""
            findings.append(
                _finding(
                    "naming-pattern",
                    manifest,
                    f"{ref}: name {ref.name!r} does not follow {expected!r}{why}",
                    "metadata.name",
                )
            )
    return findings
