"""Writing a lint ``Report`` for people and for CI: text, JSON, SARIF 2.1.0, JUnit XML.

Pure functions from a report to a string. Text lists ``file:line: severity [rule] message`` with
the fix hint under it; SARIF (what GitHub code scanning and GitLab read) carries every rule in
``tool.driver.rules`` and each finding as a result with its location, level and fingerprint
(allowlisted findings as suppressed results); JUnit has one test case per rule.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote

from tether.policy.findings import Finding, Report, Severity
from tether.policy.rules import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
FORMATS = ("text", "json", "sarif", "junit")


def render(report: Report, output: str, tool_version: str = "") -> str:
    """``report`` in ``output`` format (one of ``FORMATS``)."""
    if output == "json":
        return to_json(report)
    if output == "sarif":
        return to_sarif(report, tool_version)
    if output == "junit":
        return to_junit(report)
    return to_text(report)


def summary(report: Report) -> str:
    counts = report.counts()
    parts = [f"{counts[Severity.ERROR]} error(s)", f"{counts[Severity.WARNING]} warning(s)"]
    if counts[Severity.NOTE]:
        parts.append(f"{counts[Severity.NOTE]} note(s)")
    if report.suppressed:
        parts.append(f"{len(report.suppressed)} accepted by the allowlist")
    checked = ", ".join(f"{count} {what}" for what, count in report.checked.items())
    verdict = "findings" if report.failed else "clean"
    return f"{verdict}: {', '.join(parts)}" + (f" (checked {checked})" if checked else "")


def to_text(report: Report) -> str:
    lines: list[str] = []
    for finding in report.findings:
        lines.append(
            f"{finding.where}: {finding.severity.value} [{finding.rule}] {finding.message}"
        )
        if finding.hint:
            lines.append(f"    fix: {finding.hint}")
        if finding.rule.startswith("secret-"):
            lines.append(f"    fingerprint: {finding.fingerprint}")
    if report.review is not None:
        review = report.review
        lines.append("")
        lines.append(f"change since {review.since}: {len(review.files)} file(s)")
        if review.layers:
            lines.append(f"  layers: {', '.join(review.layers)}")
        environments = list(review.environments)
        if review.reaches_every_environment:
            environments.append("every environment (a base or component changed)")
        if environments:
            lines.append(f"  reaches: {', '.join(environments)}")
        teams = ", ".join(review.teams) or "none"
        lines.append(f"  owning teams: {teams}")
        lines.append(f"  review needed from: {' '.join(review.owners) or 'nobody (no owners)'}")
        if review.unowned:
            lines.append(f"  owned by no team: {', '.join(review.unowned)}")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> str:
    counts = report.counts()
    data: dict[str, Any] = {
        "root": report.root,
        "result": "findings" if report.failed else "clean",
        "summary": {
            "errors": counts[Severity.ERROR],
            "warnings": counts[Severity.WARNING],
            "notes": counts[Severity.NOTE],
            "suppressed": len(report.suppressed),
        },
        "checked": report.checked,
        "findings": [finding.to_dict() for finding in report.findings],
        "suppressed": [
            {**item.finding.to_dict(), "reason": item.reason} for item in report.suppressed
        ],
        "review": report.review.to_dict() if report.review else None,
    }
    return json.dumps(data, indent=2) + "\n"


# -- SARIF --------------------------------------------------------------------------------------


def _rule_name(rule_id: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", rule_id))


def _sarif_level(severity: Severity) -> str:
    return {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}[severity]


def _location(finding: Finding) -> dict[str, Any]:
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": quote(finding.path or "."), "uriBaseId": "SRCROOT"}
    }
    if finding.line > 0:
        physical["region"] = {"startLine": finding.line}
    return {"physicalLocation": physical}


def _sarif_result(finding: Finding, index: dict[str, int], reason: str | None) -> dict[str, Any]:
    text = finding.message.rstrip(".") + "."
    if finding.hint:
        text += f" Fix: {finding.hint}"
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": _sarif_level(finding.severity),
        "message": {"text": text},
        "locations": [_location(finding)],
        "partialFingerprints": {"tetherFingerprint/v1": finding.fingerprint},
    }
    if finding.rule in index:
        result["ruleIndex"] = index[finding.rule]
    if reason is not None:
        result["suppressions"] = [{"kind": "external", "justification": reason}]
    return result


def to_sarif(report: Report, tool_version: str = "") -> str:
    rules = list(RULES.values())
    index = {rule.id: position for position, rule in enumerate(rules)}
    driver: dict[str, Any] = {
        "name": "tether",
        "rules": [
            {
                "id": rule.id,
                "name": _rule_name(rule.id),
                "shortDescription": {"text": rule.summary},
                "help": {"text": rule.hint},
                "defaultConfiguration": {"level": _sarif_level(rule.severity)},
                "properties": {"tags": [rule.family]} if rule.family else {},
            }
            for rule in rules
        ],
    }
    if tool_version:
        driver["version"] = tool_version
    results = [_sarif_result(f, index, None) for f in report.findings]
    results += [_sarif_result(s.finding, index, s.reason) for s in report.suppressed]
    root_uri = (
        "file://" + quote(report.root.rstrip("/") + "/") if report.root.startswith("/") else ""
    )
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if root_uri:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": root_uri}}
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


# -- JUnit --------------------------------------------------------------------------------------


def to_junit(report: Report) -> str:
    """One test case per rule that ran; a rule with errors or warnings fails, notes go to
    ``system-out``."""
    rule_ids = report.rules or list(RULES)
    by_rule: dict[str, list[Finding]] = {rule_id: [] for rule_id in rule_ids}
    for finding in report.findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    failures = sum(1 for items in by_rule.values() if any(f.severity.fails for f in items))
    suites = ET.Element(
        "testsuites", name="tether lint", tests=str(len(by_rule)), failures=str(failures)
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="tether lint",
        tests=str(len(by_rule)),
        failures=str(failures),
        errors="0",
        skipped="0",
    )
    for rule_id, items in by_rule.items():
        rule = RULES.get(rule_id)
        family = rule.family if rule else "other"
        case = ET.SubElement(suite, "testcase", classname=f"tether.lint.{family}", name=rule_id)
        failing = [f for f in items if f.severity.fails]
        notes = [f for f in items if not f.severity.fails]
        if failing:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{len(failing)} finding(s): {rule.summary if rule else rule_id}",
                type=rule_id,
            )
            failure.text = "\n".join(_junit_line(f) for f in failing) + "\n"
        if notes:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(_junit_line(f) for f in notes) + "\n"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _junit_line(finding: Finding) -> str:
    line = f"{finding.where}: {finding.severity.value}: {finding.message}"
    return f"{line}\n    fix: {finding.hint}" if finding.hint else line
