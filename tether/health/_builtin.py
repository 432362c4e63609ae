"""Built-in kinds that are not workloads: storage, networking, namespaces, CRDs, budgets,
autoscalers and aggregated APIs."""

from __future__ import annotations

import json

from tether.health._fields import Condition, Fields, Unparseable
from tether.health._verdict import Verdict, degraded, detailed, healthy, progressing

# HorizontalPodAutoscaler: ScalingActive=False for these reasons is a deliberate stop, not a
# failure (the target was scaled to 0, or the HPA has nothing to compute from by design).
_HPA_IDLE_REASONS = frozenset({"ScalingDisabled"})
# APIService: Available=False for these reasons means the backing Service has no ready pod yet,
# which a rollout of the same app fixes; any other reason needs a change.
_API_SERVICE_WAITING_REASONS = frozenset({"MissingEndpoints", "EndpointsNotFound"})


def persistent_volume_claim(live: Fields) -> Verdict:
    phase = live.text("status.phase")
    if phase == "Bound":
        return healthy()
    if phase == "Lost":
        return degraded("PersistentVolumeClaim lost its volume")
    return progressing(f"PersistentVolumeClaim is {phase or 'Pending'}")


def service(live: Fields) -> Verdict:
    if live.text("spec.type") != "LoadBalancer":
        return healthy()
    if live.items("status.loadBalancer.ingress"):
        return healthy()
    return progressing("Service is waiting for a load balancer address")


def custom_resource_definition(live: Fields) -> Verdict:
    """NamesAccepted=False or Established=False (other than while ``Installing``) → Degraded,
    as kstatus says Failed; Established=True → Healthy; no verdict yet → Progressing."""
    rejected = live.condition_is("NamesAccepted", "False")
    if rejected is not None:
        return degraded(detailed("CustomResourceDefinition names not accepted", rejected.explain()))
    established = live.condition("Established")
    if established is not None and established.is_true:
        return healthy()
    if established is not None and established.is_false and established.reason != "Installing":
        return degraded(
            detailed("CustomResourceDefinition is not established", established.explain())
        )
    return progressing("CustomResourceDefinition is not established yet")


def namespace(live: Fields) -> Verdict:
    if live.text("status.phase") == "Terminating":
        return progressing("Namespace is terminating")
    return healthy()


def pod_disruption_budget(live: Fields) -> Verdict:
    """Enough healthy pods → Healthy. Fewer, while all of the pods it selects are healthy (it
    requires more pods than exist) → Degraded: it can never be satisfied, and blocks every
    voluntary eviction (node drains) until its spec or the workload's scale changes."""
    current = live.integer("status.currentHealthy")
    desired = live.integer("status.desiredHealthy")
    expected = live.integer("status.expectedPods")
    if current >= desired:
        return healthy()
    if expected > 0 and current >= expected:
        return degraded(
            f"PodDisruptionBudget can never be satisfied: it requires {desired} healthy pods, "
            f"but only {expected} match its selector"
        )
    return progressing(f"PodDisruptionBudget: {current} of {desired} required pods are healthy")


def horizontal_pod_autoscaler(live: Fields) -> Verdict:
    """AbleToScale=False → Degraded (it cannot read or change its target's scale);
    ScalingActive=False → Degraded (no metric can be read or computed), unless scaling is
    disabled on purpose; no conditions yet → Progressing. ScalingLimited (at min or max) is
    Healthy. ``autoscaling/v1`` carries the same conditions in an annotation."""
    conditions = {c.type: c for c in _hpa_conditions(live)}
    if not conditions:
        return progressing("HorizontalPodAutoscaler has not computed a scale yet")
    able = conditions.get("AbleToScale")
    if able is not None and able.is_false:
        return degraded(detailed("HorizontalPodAutoscaler cannot scale", able.explain()))
    active = conditions.get("ScalingActive")
    if active is not None and active.is_false:
        if active.reason in _HPA_IDLE_REASONS:
            return healthy(detailed("scaling is disabled", active.message))
        return degraded(detailed("HorizontalPodAutoscaler is not scaling", active.explain()))
    return healthy()


def _hpa_conditions(live: Fields) -> list[Condition]:
    if live.has("status.conditions"):
        return [c for c in (live.condition(t) for t in _HPA_TYPES) if c is not None]
    annotations = live.mapping("metadata.annotations") or {}
    annotation = annotations.get(_HPA_V1_ANNOTATION)
    return _annotated_conditions(annotation) if isinstance(annotation, str) else []


_HPA_TYPES = ("AbleToScale", "ScalingActive", "ScalingLimited")
_HPA_V1_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"


def _annotated_conditions(text: str) -> list[Condition]:
    try:
        entries = json.loads(text)
    except ValueError:
        raise Unparseable(f"annotation {_HPA_V1_ANNOTATION} is not JSON") from None
    wrapped = Fields({"status": {"conditions": entries}})
    return [c for c in (wrapped.condition(t) for t in _HPA_TYPES) if c is not None]


def api_service(live: Fields) -> Verdict:
    """Served locally (no ``spec.service``) → Healthy. Otherwise Available=True → Healthy; False
    because its Service has no ready endpoint yet → Progressing; False for any other reason
    (Service missing, discovery failing) → Degraded; no condition yet → Progressing."""
    if not live.has("spec.service"):
        return healthy()
    available = live.condition("Available")
    if available is None:
        return progressing("APIService availability has not been checked yet")
    if available.is_true:
        return healthy()
    if available.is_false and available.reason not in _API_SERVICE_WAITING_REASONS:
        return degraded(detailed("APIService is not available", available.explain()))
    return progressing(detailed("APIService is not available yet", available.explain()))


def ingress(_: Fields) -> Verdict:
    """No reliable signal: many controllers never fill ``status.loadBalancer``."""
    return healthy()
