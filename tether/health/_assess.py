"""The rule table and the two entry points.

Every object goes through the same steps: Missing when it does not exist; the generic checks
(being deleted, controller behind the spec); "not observed yet" when its rule expects a status
and there is none; then its rule. The rule for ``(group, kind)`` is looked up in this order:
the users' checks (the App's, then the cluster-wide ones), the rule library
(``rules/*.yaml``), the Python rules below for built-in kinds, and last the condition-based rule
for kinds nobody knows. A live object whose fields cannot be read is Unknown with a message
naming the field: ``assess`` never raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tether.core import HealthReport, HealthStatus, ObjectHealth, ObjectRef
from tether.health import _builtin, _external, _generic, _workloads
from tether.health._declarative import NOT_OBSERVED_VERDICT, DeclaredRule, compile_checks
from tether.health._fields import Fields, Unparseable
from tether.health._library import lookup
from tether.health._observed import DEFAULT_GRACE, Moment, awaiting_controller, reported
from tether.health._verdict import Check, Verdict


@dataclass(frozen=True)
class Rule:
    """How one kind is judged.

    ``reports_generation``: the kind's controller always writes ``status.observedGeneration``, so
    its absence means the controller has not seen the object yet. ``expects_status``: an object
    without status has not been seen by its controller yet (Progressing during the grace period);
    ``known``: after the grace period that is Degraded (a controller should exist) rather than
    Healthy with a note (perhaps none does).
    """

    check: Check
    reports_generation: bool = False
    expects_status: bool = False
    known: bool = True


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
    ("autoscaling", "HorizontalPodAutoscaler"): Rule(_builtin.horizontal_pod_autoscaler),
    ("apiregistration.k8s.io", "APIService"): Rule(_builtin.api_service),
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
"""The Python rule for each built-in ``(group, kind)``; the core group is ``""``."""

_BY_CONDITIONS = Rule(_generic.by_conditions, expects_status=True, known=False)


@dataclass(frozen=True)
class HealthPolicy:
    """What judging needs besides the object: users' checks, and the grace period (seconds) a
    controller gets to report on an object after it was applied."""

    checks: Mapping[tuple[str, str], DeclaredRule] = field(default_factory=dict)
    grace: float = DEFAULT_GRACE

    def with_checks(self, entries: Sequence[object], origin: str) -> HealthPolicy:
        """This policy with the checks ``entries`` (users' form) on top of its own.

        Raises InvalidHealthCheck naming ``origin`` when one does not compile.
        """
        return replace(self, checks={**self.checks, **compile_checks(entries, origin)})


DEFAULT_POLICY = HealthPolicy()


def assess(
    ref: ObjectRef,
    live: dict[str, Any] | None,
    policy: HealthPolicy = DEFAULT_POLICY,
    now: datetime | None = None,
) -> ObjectHealth:
    """The health of one object, given its live body (None when it does not exist).

    ``now`` (default: the current time) decides whether an object without status is still in
    its grace period.
    """
    if live is None:
        return ObjectHealth(ref, HealthStatus.MISSING, "not found in the cluster")
    moment = Moment(now or datetime.now(UTC), policy.grace)
    status, message = _judge(ref, live, policy, moment)
    return ObjectHealth(ref, status, message)


def assess_all(
    items: Iterable[tuple[ObjectRef, dict[str, Any] | None]],
    policy: HealthPolicy = DEFAULT_POLICY,
    now: datetime | None = None,
) -> HealthReport:
    """Every object's health, in the order given; the report's status is the worst of them."""
    now = now or datetime.now(UTC)
    return HealthReport([assess(ref, live, policy, now) for ref, live in items])


def rule_for(ref: ObjectRef, policy: HealthPolicy = DEFAULT_POLICY) -> Rule:
    """The rule that judges ``ref``'s kind (see the module docstring for the order)."""
    key = (ref.group, ref.kind)
    declared = policy.checks.get(key) or lookup(*key)
    if declared is not None:
        return Rule(declared, expects_status=declared.expects_status)
    return RULES.get(key, _BY_CONDITIONS)


def _judge(ref: ObjectRef, live: object, policy: HealthPolicy, moment: Moment) -> Verdict:
    if not isinstance(live, Mapping):
        kind = "null" if live is None else type(live).__name__
        return Verdict(HealthStatus.UNKNOWN, f"cannot read live object: it is a {kind}")
    rule = rule_for(ref, policy)
    fields = Fields(live)
    try:
        pending = _generic.pending_change(fields, reports_generation=rule.reports_generation)
        if pending is not None:
            return pending
        if rule.expects_status and not reported(fields):
            return awaiting_controller(fields, moment, ref.group_kind, known=rule.known)
        verdict = rule.check(fields)
        if verdict is NOT_OBSERVED_VERDICT:
            return awaiting_controller(fields, moment, ref.group_kind, known=True)
        return verdict
    except Unparseable as error:
        return Verdict(HealthStatus.UNKNOWN, f"cannot assess: {error}")
