"""Built-in kinds that are not workloads: storage, networking, namespaces, CRDs, budgets."""

from __future__ import annotations

from tether.health._fields import Fields
from tether.health._verdict import Verdict, degraded, detailed, healthy, progressing


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
    rejected = live.condition_is("NamesAccepted", "False")
    if rejected is not None:
        return degraded(detailed("CustomResourceDefinition names not accepted", rejected.explain()))
    if live.condition_is("Established", "True") is not None:
        return healthy()
    return progressing("CustomResourceDefinition is not established yet")


def namespace(live: Fields) -> Verdict:
    if live.text("status.phase") == "Terminating":
        return progressing("Namespace is terminating")
    return healthy()


def pod_disruption_budget(live: Fields) -> Verdict:
    current = live.integer("status.currentHealthy")
    desired = live.integer("status.desiredHealthy")
    if current >= desired:
        return healthy()
    return progressing(f"PodDisruptionBudget: {current} of {desired} required pods are healthy")


def ingress(_: Fields) -> Verdict:
    """No reliable signal: many controllers never fill ``status.loadBalancer``."""
    return healthy()
