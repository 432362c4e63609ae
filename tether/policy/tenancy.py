"""Who may define what: one owner per object, apps inside their own namespaces.

An object defined by two apps (or by an app and the platform) in the same environment would be
fought over by two syncs; a shared object belongs to ``platform/``. An app may write only into
its namespaces (tether.yaml ``apps[].namespaces`` and its team's ``namespaces``, globs allowed)
and should not define cluster-scoped objects, which reach every tenant.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from tether.core import Manifest, ObjectRef
from tether.policy.config import RepoConfig
from tether.policy.findings import Finding
from tether.policy.layout import APPS, Unit
from tether.policy.rules import RULES

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "ComponentStatus",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "DeviceClass",
        "FlowSchema",
        "IngressClass",
        "IPAddress",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "ServiceCIDR",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
        "VolumeAttributesClass",
    }
)


def cluster_scoped(manifests: Iterable[Manifest]) -> set[tuple[str, str]]:
    """``(group, kind)`` of the cluster-scoped kinds CustomResourceDefinitions here define."""
    scoped: set[tuple[str, str]] = set()
    for manifest in manifests:
        if not manifest.is_crd:
            continue
        spec = manifest.body.get("spec") or {}
        if spec.get("scope") == "Cluster":
            scoped.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))))
    return scoped


def is_cluster_scoped(ref: ObjectRef, custom: set[tuple[str, str]]) -> bool:
    """Whether objects of ``ref``'s kind live outside namespaces (built in, or by a CRD here)."""
    return (ref.group, ref.kind) in custom or ref.kind in CLUSTER_SCOPED_KINDS


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(re.escape(pattern).replace(r"\*", "[-a-z0-9.]*").replace(r"\?", "."))


def check_duplicates(
    units: list[Unit], environments: tuple[str, ...], custom: set[tuple[str, str]]
) -> list[Finding]:
    """Objects defined by more than one owner in one environment (a base counts everywhere)."""
    where: dict[tuple[ObjectRef, str], dict[str, Manifest]] = defaultdict(dict)
    for unit in units:
        envs = [unit.place.environment] if unit.place.environment else list(environments)
        for manifest in unit.manifests:
            ref = manifest.ref
            if not ref.namespace and not is_cluster_scoped(ref, custom):
                continue  # its namespace is decided at sync time
            for environment in envs:
                where[(ref, environment)].setdefault(unit.owner, manifest)
    clashes: dict[tuple[ObjectRef, frozenset[str]], tuple[dict[str, Manifest], list[str]]] = {}
    for (ref, environment), owners in where.items():
        if len(owners) < 2:
            continue
        key = (ref, frozenset(owners))
        clashes.setdefault(key, (owners, []))[1].append(environment)
    findings: list[Finding] = []
    rule = RULES["duplicate-object"]
    for (ref, _), (owners, envs) in sorted(clashes.items(), key=lambda item: str(item[0][0])):
        for owner, manifest in sorted(owners.items()):
            others = ", ".join(
                f"{_owner_name(other)} ({m.source})"
                for other, m in sorted(owners.items())
                if other != owner
            )
            findings.append(
                Finding(
                    rule.id,
                    manifest.source.path,
                    f"{ref} is defined by {_owner_name(owner)} and also by {others} "
                    f"(environments: {', '.join(sorted(envs, key=environments.index))})",
                    manifest.source.line,
                    rule.severity,
                    rule.hint,
                    subject=str(ref),
                )
            )
    return findings


def _owner_name(owner: str) -> str:
    return "the platform" if owner == "platform" else f"app {owner!r}"


def check_namespaces(unit: Unit, config: RepoConfig, custom: set[tuple[str, str]]) -> list[Finding]:
    """An app's objects outside its namespaces, and its cluster-scoped objects."""
    if unit.place.layer != APPS or not unit.place.app:
        return []
    app = unit.place.app
    allowed = config.app_namespaces(app)
    patterns = [_glob(pattern) for pattern in allowed]
    findings: list[Finding] = []
    for manifest in unit.manifests:
        ref = manifest.ref
        if ref.kind == "Namespace" and not ref.group:
            namespace = ref.name
        elif is_cluster_scoped(ref, custom):
            rule = RULES["app-cluster-scoped"]
            findings.append(
                Finding(
                    rule.id,
                    manifest.source.path,
                    f"{ref} is cluster-scoped: app {app!r} may only define namespaced objects",
                    manifest.source.line,
                    rule.severity,
                    rule.hint,
                    subject=str(ref),
                )
            )
            continue
        else:
            namespace = ref.namespace
        if not namespace or any(p.fullmatch(namespace) for p in patterns):
            continue
        field = "metadata.name" if ref.kind == "Namespace" else "metadata.namespace"
        rule = RULES["namespace-outside-app"]
        findings.append(
            Finding(
                rule.id,
                manifest.source.path,
                f"{ref}: app {app!r} writes into namespace {namespace!r}, which is not one of its "
                f"namespaces ({', '.join(allowed)})",
                manifest.source.line,
                rule.severity,
                rule.hint,
                subject=str(ref),
                field=field,
            )
        )
    return findings
