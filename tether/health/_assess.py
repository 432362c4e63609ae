"""The rule table and the two entry points.

Every object goes through the same three steps: Missing when it does not exist; the generic
checks (being deleted, controller behind the spec); then the rule registered for its
``(group, kind)``, or the condition-based rule for kinds not in the table. A live object whose
fields cannot be read is Unknown with a message naming the field: ``assess`` never raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.core import HealthReport, HealthStatus, ObjectHealth, ObjectRef
from tether.health import _builtin, _external, _generic, _workloads
from tether.health._fields import Fields, Unparseable
from tether.health._verdict import Check, Verdict


@dataclass(frozen=True)
class Rule:
    """How one kind is judged.

    ``reports_generation``: the kind's controller always writes ``status.observedGeneration``, so
    its absence means the controller has not seen the object yet.
    """

    check: Check
    reports_generation: bool = False


_CONFIGURATION = Rule(_generic.exists)

RULES: Mapping[tuple[str, str], Rule] = {
    ("apps", "Deployment"): Rule(_workloads.deployment, reports_generation=True),
    ("apps", "StatefulSet"): Rule(_workloads.stateful_set, reports_generation=True),
    ("apps", "DaemonSet"): Rule(_workloads.daemon_set, reports_generation=True),
    ("apps", "ReplicaSet"): Rule(_workloads.replica_set, reports_generation=True),
    ("", "ReplicationController"): Rule(_workloads.replication_controller, reports_generation=True),
    ("batch", "Job"): Rule(_workloads.job),
    ("batch", "CronJob"): Rule(_workloads.cron_job),
    ("", "Pod"): Rule(_workloads.pod),
    ("", "PersistentVolumeClaim"): Rule(_builtin.persistent_volume_claim),
    ("", "Service"): Rule(_builtin.service),
    ("", "Namespace"): Rule(_builtin.namespace),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): Rule(_builtin.custom_resource_definition),
    ("policy", "PodDisruptionBudget"): Rule(
        _builtin.pod_disruption_budget, reports_generation=True
    ),
    ("networking.k8s.io", "Ingress"): Rule(_builtin.ingress),
    ("bitnami.com", "SealedSecret"): Rule(_external.sealed_secret),
    ("", "ConfigMap"): _CONFIGURATION,
    ("", "Secret"): _CONFIGURATION,
    ("", "ServiceAccount"): _CONFIGURATION,
    ("", "LimitRange"): _CONFIGURATION,
    ("", "ResourceQuota"): _CONFIGURATION,
    ("rbac.authorization.k8s.io", "Role"): _CONFIGURATION,
    ("rbac.authorization.k8s.io", "RoleBinding"): _CONFIGURATION,
    ("rbac.authorization.k8s.io", "ClusterRole"): _CONFIGURATION,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _CONFIGURATION,
    ("networking.k8s.io", "NetworkPolicy"): _CONFIGURATION,
    ("networking.k8s.io", "IngressClass"): _CONFIGURATION,
    ("storage.k8s.io", "StorageClass"): _CONFIGURATION,
    ("scheduling.k8s.io", "PriorityClass"): _CONFIGURATION,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _CONFIGURATION,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _CONFIGURATION,
}
"""The rule for each known ``(group, kind)``; the core group is ``""``."""

_BY_CONDITIONS = Rule(_generic.by_conditions)


def assess(ref: ObjectRef, live: dict[str, Any] | None) -> ObjectHealth:
    """The health of one object, given its live body (None when it does not exist)."""
    if live is None:
        return ObjectHealth(ref, HealthStatus.MISSING, "not found in the cluster")
    status, message = _judge(ref, live)
    return ObjectHealth(ref, status, message)


def assess_all(items: Iterable[tuple[ObjectRef, dict[str, Any] | None]]) -> HealthReport:
    """Every object's health, in the order given; the report's status is the worst of them."""
    return HealthReport([assess(ref, live) for ref, live in items])


def _judge(ref: ObjectRef, live: object) -> Verdict:
    if not isinstance(live, Mapping):
        kind = "null" if live is None else type(live).__name__
        return Verdict(HealthStatus.UNKNOWN, f"cannot read live object: it is a {kind}")
    rule = RULES.get((ref.group, ref.kind), _BY_CONDITIONS)
    fields = Fields(live)
    try:
        pending = _generic.pending_change(fields, reports_generation=rule.reports_generation)
        return pending if pending is not None else rule.check(fields)
    except Unparseable as error:
        return Verdict(HealthStatus.UNKNOWN, f"cannot assess: {error}")
