"""Workload kinds: Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
CronJob and Pod.

Each rule compares what the spec asks for with what the controller reports, in the order a
rollout goes through (created, updated, ready/available, old pods gone), and names the first
gap in its message.
"""

from __future__ import annotations

from tether.health._fields import Fields
from tether.health._verdict import (
    Verdict,
    count,
    degraded,
    detailed,
    healthy,
    progressing,
    unknown,
)

# Container waiting reasons that do not resolve by waiting: the image or config must change.
_STUCK_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
    }
)


def deployment(live: Fields) -> Verdict:
    if live.flag("spec.paused"):
        return healthy("rollout is paused")
    stuck = live.condition("Progressing")
    if stuck is not None and stuck.is_false and stuck.reason == "ProgressDeadlineExceeded":
        return degraded(detailed("Deployment rollout: progress deadline exceeded", stuck.message))
    failure = live.condition_is("ReplicaFailure", "True")
    if failure is not None:
        return degraded(detailed("Deployment cannot create pods", failure.explain()))
    wanted = live.integer("spec.replicas", 1)
    total = live.integer("status.replicas")
    updated = live.integer("status.updatedReplicas")
    available = live.integer("status.availableReplicas")
    if updated < wanted:
        return progressing(f"Deployment rollout: {updated} of {wanted} replicas updated")
    if total > updated:
        old = count(total - updated, "old replica")
        return progressing(f"Deployment rollout: {old} pending termination")
    if available < updated:
        return progressing(
            f"Deployment rollout: {available} of {updated} updated replicas are available"
        )
    unavailable = live.condition_is("Available", "False")
    if unavailable is not None:
        return progressing(detailed("Deployment is not available", unavailable.explain()))
    return healthy()


def stateful_set(live: Fields) -> Verdict:
    if live.text("spec.updateStrategy.type") == "OnDelete":
        return healthy("update strategy is OnDelete: pods are replaced by hand")
    wanted = live.integer("spec.replicas", 1)
    total = live.integer("status.replicas")
    ready = live.integer("status.readyReplicas")
    updated = live.integer("status.updatedReplicas")
    if total < wanted:
        return progressing(f"StatefulSet: {total} of {wanted} replicas created")
    if total > wanted:
        return progressing(f"StatefulSet: {count(total - wanted, 'replica')} pending termination")
    if ready < wanted:
        return progressing(f"StatefulSet: {ready} of {wanted} replicas are ready")
    partition = live.integer("spec.updateStrategy.rollingUpdate.partition")
    if partition > 0:
        expected = max(wanted - partition, 0)
        if updated < expected:
            return progressing(
                f"StatefulSet partitioned rollout: {updated} of {expected} replicas updated"
            )
        return healthy(f"partitioned rollout complete: {expected} of {wanted} replicas updated")
    if updated < wanted:
        return progressing(f"StatefulSet rollout: {updated} of {wanted} replicas updated")
    target = live.text("status.updateRevision")
    if live.text("status.currentRevision") != target:
        return progressing(f"StatefulSet rollout: waiting for revision {target} to become current")
    return healthy()


def daemon_set(live: Fields) -> Verdict:
    if not live.has("status.desiredNumberScheduled"):
        return progressing("DaemonSet: the controller has not counted the nodes to run on yet")
    desired = live.integer("status.desiredNumberScheduled")
    scheduled = live.integer("status.currentNumberScheduled")
    misscheduled = live.integer("status.numberMisscheduled")
    updated = live.integer("status.updatedNumberScheduled")
    available = live.integer("status.numberAvailable")
    if scheduled < desired:
        return progressing(f"DaemonSet: {scheduled} of {desired} nodes run a pod")
    if misscheduled > 0:
        extra = count(misscheduled, "pod")
        return progressing(f"DaemonSet: {extra} scheduled where the DaemonSet should not run")
    on_delete = live.text("spec.updateStrategy.type") == "OnDelete"
    if not on_delete and updated < desired:
        return progressing(f"DaemonSet rollout: {updated} of {desired} pods updated")
    if available < desired:
        return progressing(f"DaemonSet: {available} of {desired} pods are available")
    return healthy()


def replica_set(live: Fields) -> Verdict:
    return _replicas(live, "ReplicaSet")


def replication_controller(live: Fields) -> Verdict:
    return _replicas(live, "ReplicationController")


def _replicas(live: Fields, kind: str) -> Verdict:
    failure = live.condition_is("ReplicaFailure", "True")
    if failure is not None:
        return degraded(detailed(f"{kind} cannot create pods", failure.explain()))
    wanted = live.integer("spec.replicas", 1)
    total = live.integer("status.replicas")
    ready = live.integer("status.readyReplicas")
    available = live.integer("status.availableReplicas")
    if total < wanted:
        return progressing(f"{kind}: {total} of {wanted} replicas created")
    if total > wanted:
        return progressing(f"{kind}: {count(total - wanted, 'replica')} pending termination")
    if ready < wanted:
        return progressing(f"{kind}: {ready} of {wanted} replicas are ready")
    if available < wanted:
        return progressing(f"{kind}: {available} of {wanted} replicas are available")
    return healthy()


def job(live: Fields) -> Verdict:
    failed = live.condition_is("Failed", "True")
    if failed is not None:
        return degraded(f"Job failed: {failed.explain() or 'no reason given'}")
    if live.condition_is("Complete", "True") is not None:
        return healthy()
    suspended = live.condition_is("Suspended", "True") is not None
    if live.flag("spec.suspend"):
        if suspended:
            return healthy("Job is suspended")
        return progressing("Job: waiting for the Job controller to suspend it")
    if suspended:
        return progressing("Job: waiting for the Job controller to resume it")
    active = live.integer("status.active")
    succeeded = live.integer("status.succeeded")
    failures = live.integer("status.failed")
    completions = live.optional_integer("spec.completions")
    progress = f"Job: {active} active, {succeeded} succeeded"
    if completions is not None:
        progress += f" of {completions}"
    if failures:
        progress += f", {failures} failed"
    return progressing(progress)


def cron_job(live: Fields) -> Verdict:
    """A CronJob is a schedule: it is healthy as such; its Jobs carry their own health."""
    return healthy("schedule is suspended") if live.flag("spec.suspend") else healthy()


def pod(live: Fields) -> Verdict:
    phase = live.text("status.phase")
    if phase == "Succeeded":
        return healthy()
    if phase == "Failed":
        reason, detail = live.text("status.reason"), live.text("status.message")
        why = ": ".join(part for part in (reason, detail) if part)
        return degraded(f"Pod failed: {why or 'no reason given'}")
    if phase == "Unknown":
        return unknown("Pod phase is Unknown: its node stopped reporting")
    for container in _container_statuses(live):
        name = container.text("name")
        reason = container.text("state.waiting.reason")
        if reason in _STUCK_WAITING_REASONS:
            detail = container.text("state.waiting.message")
            return degraded(detailed(f"container {name} is waiting: {reason}", detail))
        failing = _exiting_with_error(container, live.text("spec.restartPolicy") or "Always")
        if failing is not None:
            return degraded(f"container {name} {failing}")
    ready = live.condition("Ready")
    if phase == "Running" and ready is not None and ready.is_true:
        return healthy()
    unschedulable = live.condition_is("PodScheduled", "False")
    if unschedulable is not None:
        return progressing(detailed("Pod is not scheduled", unschedulable.explain()))
    if phase == "Running":
        why = ready.explain() if ready is not None else ""
        return progressing(detailed("Pod is running but not ready", why))
    return progressing(f"Pod is {phase or 'Pending'}")


def _exiting_with_error(container: Fields, restart_policy: str) -> str | None:
    """How a container keeps failing, before the kubelet says CrashLoopBackOff: it is stopped
    now with a non-zero exit code and will be restarted, or it was restarted after one and is
    not ready again yet. None when it is not failing."""
    if container.flag("ready"):
        return None
    restarts = container.integer("restartCount")
    now = container.optional_integer("state.terminated.exitCode")
    if now is not None and now != 0 and restart_policy != "Never":
        reason = container.text("state.terminated.reason") or "Error"
        return f"exited with code {now} ({reason}), {count(restarts, 'restart')} so far"
    last = container.optional_integer("lastState.terminated.exitCode")
    if last is not None and last != 0 and restarts > 0:
        reason = container.text("lastState.terminated.reason") or "Error"
        return f"keeps exiting: last exit code {last} ({reason}), {count(restarts, 'restart')}"
    return None


def _container_statuses(live: Fields) -> list[Fields]:
    return [
        *live.objects("status.initContainerStatuses"),
        *live.objects("status.containerStatuses"),
    ]
