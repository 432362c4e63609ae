"""The allowlist of tether.yaml: findings a team has looked at and accepted.

An entry matches a finding when every field it sets matches: ``fingerprint`` (shown by
``tether lint`` for each finding), ``path`` (a glob), ``rule`` (a rule id). Every entry must
give a ``reason``; accepted findings are still listed as suppressed in JSON and SARIF output.
"""

from __future__ import annotations

from tether.policy.config import AllowEntry
from tether.policy.findings import Finding, Suppressed
from tether.policy.globs import matches


def accepts(entry: AllowEntry, finding: Finding) -> bool:
    if entry.fingerprint and entry.fingerprint != finding.fingerprint:
        return False
    if entry.rule and entry.rule != finding.rule:
        return False
    return not (entry.path and not matches(entry.path, finding.path))


def apply(
    findings: list[Finding], entries: tuple[AllowEntry, ...]
) -> tuple[list[Finding], list[Suppressed]]:
    """``findings`` split into those that stand and those the allowlist accepts."""
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    for finding in findings:
        entry = next((e for e in entries if accepts(e, finding)), None)
        if entry is None:
            kept.append(finding)
        else:
            suppressed.append(Suppressed(finding, entry.reason))
    return kept, suppressed
