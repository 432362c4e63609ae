"""Output formats: text, JSON, SARIF 2.1.0 and JUnit XML.

No installable package ships the official SARIF 2.1.0 JSON schema (sarif-om, sarif-tools,
jschema-to-python, pysarif, pydantic-sarif and sarif-pydantic were checked: none contains it),
and it cannot be downloaded here. ``SARIF_SUBSET`` is therefore written for this test from the
SARIF 2.1.0 specification: the parts of the format Tether emits, with the spec's required
properties, enumerations and bounds, closed against unknown properties where the spec is. The
cross-references the schema cannot express (ruleIndex ↔ rules) are checked by hand.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.policy.conftest import Repo, Tether
from tether.policy.findings import Finding, Report, Review, Severity, Suppressed
from tether.policy.report import render, to_junit, to_sarif
from tether.policy.rules import RULES

_MESSAGE = {
    "type": "object",
    "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
    "properties": {
        "text": {"type": "string"},
        "markdown": {"type": "string"},
        "id": {"type": "string"},
    },
}
_MULTIFORMAT = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
}
_LEVEL = {"enum": ["none", "note", "warning", "error"]}
SARIF_SUBSET = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "items": {"$ref": "#/definitions/run"}},
    },
    "definitions": {
        "run": {
            "type": "object",
            "required": ["tool"],
            "properties": {
                "tool": {
                    "type": "object",
                    "required": ["driver"],
                    "properties": {"driver": {"$ref": "#/definitions/toolComponent"}},
                },
                "results": {"type": "array", "items": {"$ref": "#/definitions/result"}},
                "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                "originalUriBaseIds": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"uri": {"type": "string", "format": "uri-reference"}},
                    },
                },
            },
        },
        "toolComponent": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "informationUri": {"type": "string", "format": "uri"},
                "rules": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"$ref": "#/definitions/reportingDescriptor"},
                },
            },
        },
        "reportingDescriptor": {
            "type": "object",
            "required": ["id"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "shortDescription": _MULTIFORMAT,
                "fullDescription": _MULTIFORMAT,
                "help": _MULTIFORMAT,
                "helpUri": {"type": "string", "format": "uri"},
                "defaultConfiguration": {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": "boolean"},
                        "level": _LEVEL,
                        "rank": {"type": "number", "minimum": -1, "maximum": 100},
                    },
                },
                "properties": {"type": "object"},
            },
        },
        "result": {
            "type": "object",
            "required": ["message"],
            "additionalProperties": False,
            "properties": {
                "ruleId": {"type": "string"},
                "ruleIndex": {"type": "integer", "minimum": -1},
                "level": _LEVEL,
                "kind": {
                    "enum": ["notApplicable", "pass", "fail", "review", "open", "informational"]
                },
                "message": _MESSAGE,
                "locations": {"type": "array", "items": {"$ref": "#/definitions/location"}},
                "partialFingerprints": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
                "fingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
                "suppressions": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {
                        "type": "object",
                        "required": ["kind"],
                        "properties": {
                            "kind": {"enum": ["inSource", "external"]},
                            "status": {"enum": ["accepted", "underReview", "rejected"]},
                            "justification": {"type": "string"},
                        },
                    },
                },
            },
        },
        "location": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": -1},
                "physicalLocation": {
                    "type": "object",
                    "anyOf": [{"required": ["address"]}, {"required": ["artifactLocation"]}],
                    "additionalProperties": False,
                    "properties": {
                        "address": {"type": "object"},
                        "artifactLocation": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "uri": {"type": "string", "format": "uri-reference"},
                                "uriBaseId": {"type": "string"},
                                "index": {"type": "integer", "minimum": -1},
                            },
                        },
                        "region": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "startLine": {"type": "integer", "minimum": 1},
                                "startColumn": {"type": "integer", "minimum": 1},
                                "endLine": {"type": "integer", "minimum": 1},
                                "endColumn": {"type": "integer", "minimum": 1},
                            },
                        },
                    },
                },
            },
        },
    },
}


def sample() -> Report:
    findings = [
        Finding(
            "secret-token",
            "apps/web/base/config map.yaml",
            "GitHub token in cleartext",
            7,
            subject="GitHub token",
        ),
        Finding("layout-unknown-top-level", "scripts/", "top-level directory", 0, Severity.ERROR),
        Finding("change-multiple-teams", "apps/api/x.yaml", "two teams", 0, Severity.WARNING),
        Finding("schema-unknown-kind", "apps/web/base/w.yaml", "no schema", 3, Severity.NOTE),
    ]
    suppressed = [
        Suppressed(
            Finding("secret-high-entropy", "docs/x.md", "random", 2, Severity.WARNING), "a sample"
        )
    ]
    review = Review("HEAD~1", ("apps/api/x.yaml",), ("web", "api"), ("@acme/web", "@acme/api"))
    report = Report("/work/repo", findings, suppressed, review, {"files": 3}, list(RULES))
    report.sort()
    return report


def official_sarif_schema() -> dict[str, Any] | None:
    """The OASIS SARIF 2.1.0 schema, when it has been provided as a data file (no package on the
    registries ships it and nothing else can be downloaded here): ``$SARIF_SCHEMA``, or
    ``shared/schemas/sarif-schema-2.1.0.json`` beside the repository."""
    candidates = [
        os.environ.get("SARIF_SCHEMA", ""),
        str(Path(__file__).resolve().parents[3] / "shared" / "schemas" / "sarif-schema-2.1.0.json"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            loaded: dict[str, Any] = json.loads(Path(candidate).read_text())
            return loaded
    return None


def test_sarif_follows_the_2_1_0_format() -> None:
    log = json.loads(to_sarif(sample(), "0.1.0"))
    schemas = [SARIF_SUBSET] + [s for s in [official_sarif_schema()] if s is not None]
    for schema in schemas:
        validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
        errors = list(validator.iter_errors(log))
        assert errors == [], [e.message for e in errors]
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "tether" and run["tool"]["driver"]["version"] == "0.1.0"
    assert [rule["id"] for rule in rules] == list(RULES)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    by_rule = {result["ruleId"]: result for result in run["results"]}
    token = by_rule["secret-token"]
    assert token["level"] == "error"
    location = token["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {
        "uri": "apps/web/base/config%20map.yaml",
        "uriBaseId": "SRCROOT",
    }
    assert location["region"] == {"startLine": 7}
    assert "region" not in by_rule["layout-unknown-top-level"]["locations"][0]["physicalLocation"]
    assert by_rule["change-multiple-teams"]["level"] == "warning"
    assert by_rule["schema-unknown-kind"]["level"] == "note"
    assert by_rule["secret-high-entropy"]["suppressions"] == [
        {"kind": "external", "justification": "a sample"}
    ]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == "file:///work/repo/"


def test_the_sarif_subset_rejects_what_the_spec_rejects() -> None:
    validator = jsonschema.Draft7Validator(SARIF_SUBSET)
    good = json.loads(to_sarif(sample()))
    breakages: list[Callable[[Any], object]] = [
        lambda log: log.update(version="2.0.0"),
        lambda log: log["runs"][0]["tool"]["driver"].pop("name"),
        lambda log: log["runs"][0]["results"][0].update(level="fatal"),
        lambda log: log["runs"][0]["results"][0].pop("message"),
        lambda log: log["runs"][0]["results"][0]["locations"][0]["physicalLocation"].update(
            region={"startLine": 0}
        ),
    ]
    for breakage in breakages:
        broken = json.loads(json.dumps(good))
        breakage(broken)
        assert list(validator.iter_errors(broken)), breakage


def test_junit_has_a_case_per_rule_and_fails_those_with_findings() -> None:
    root = ET.fromstring(to_junit(sample()))  # noqa: S314 (our own output)
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == set(RULES)
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {"secret-token", "layout-unknown-top-level", "change-multiple-teams"}
    assert suite.get("tests") == str(len(RULES)) and suite.get("failures") == "3"
    failure = cases["secret-token"].find("failure")
    assert failure is not None and failure.get("type") == "secret-token"
    assert "apps/web/base/config map.yaml:7: error: GitHub token in cleartext" in (
        failure.text or ""
    )
    note = cases["schema-unknown-kind"].find("system-out")
    assert note is not None and "apps/web/base/w.yaml:3" in (note.text or "")
    assert cases["secret-high-entropy"].find("failure") is None  # suppressed by the allowlist


def test_text_and_json() -> None:
    report = sample()
    text = render(report, "text")
    assert "apps/web/base/config map.yaml:7: error [secret-token] GitHub token in cleartext" in text
    assert "    fingerprint: " in text
    assert "review needed from: @acme/web @acme/api" in text
    assert text.rstrip().endswith("(checked 3 files)")
    data = json.loads(render(report, "json"))
    assert data["result"] == "findings"
    assert data["summary"] == {"errors": 2, "warnings": 1, "notes": 1, "suppressed": 1}
    assert data["review"]["owners"] == ["@acme/web", "@acme/api"]


@pytest.mark.parametrize("output", ["sarif", "junit"])
def test_cli_writes_ci_formats(scaffolded: Repo, tether: Tether, output: str) -> None:
    scaffolded.write("stray.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    result = tether("lint", str(scaffolded.root), "-o", output)
    assert result.code == 1
    if output == "sarif":
        log = json.loads(result.stdout)
        assert not list(jsonschema.Draft7Validator(SARIF_SUBSET).iter_errors(log))
        assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["layout-manifest-outside"]
    else:
        root = ET.fromstring(result.stdout)  # noqa: S314 (our own output)
        failures = root.findall(".//failure")
        assert [f.get("type") for f in failures] == ["layout-manifest-outside"]
