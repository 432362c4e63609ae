"""Policy: pure checks over a repository's files, rendered objects and tether.yaml.

    config.parse(text) -> RepoConfig                  tether.yaml (ConfigError names file:line)
    layout.check(files, manifest_files, config)       every file where the layout says
    naming.check(unit, config)                        DNS-1123 names, tether.yaml name patterns
    secrets.scan(path, text)                          cleartext secrets, with no false alarms
    images.check(manifests, environment, rules)       latest / unpinned images per environment
    tenancy.check_duplicates / check_namespaces      one owner per object, apps in their namespaces
    schema.SchemaSet.validate(manifest)               OpenAPI v3 schemas (built in and repo CRDs)
    ownership.codeowners(config) / check_codeowners   CODEOWNERS derived from tether.yaml
    changes.judge(changed, config, since)             blast radius of a change, who must review it
    allowlist.apply(findings, entries)                accepted findings
    report.render(report, "text|json|sarif|junit")    output for people and CI

Every check returns ``Finding`` values (``findings.py``); rule ids and fix hints live in
``rules.py``. This piece imports only ``tether.core``, ``tether.errors`` and libraries: no
subprocess, no network, no cluster. ``tether.governance`` composes it with rendering and git.
See ``docs/lint.md`` and ``docs/layout.md``.
"""

from tether.policy.config import ConfigError, RepoConfig, parse
from tether.policy.findings import Finding, Report, Review, Rule, Severity, Suppressed
from tether.policy.rules import RULES

__all__ = [
    "RULES",
    "ConfigError",
    "Finding",
    "RepoConfig",
    "Report",
    "Review",
    "Rule",
    "Severity",
    "Suppressed",
    "parse",
]
