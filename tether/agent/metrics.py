"""The agent's Prometheus metrics, in one registry served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

RECONCILE_DURATION = Histogram(
    "tether_reconcile_duration_seconds",
    "Duration of one reconcile pass of an app.",
    ["app"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SYNCS = Counter(
    "tether_syncs_total",
    "Syncs by result (succeeded, failed).",
    ["app", "result"],
    registry=REGISTRY,
)
DRIFT = Counter(
    "tether_drift_total",
    "Managed objects found changed or deleted by hand.",
    ["app", "kind"],
    registry=REGISTRY,
)
MANAGED_OBJECTS = Gauge(
    "tether_managed_objects", "Objects in an app's inventory.", ["app"], registry=REGISTRY
)
APP_READY = Gauge(
    "tether_app_ready", "1 when the app's Ready condition is True.", ["app"], registry=REGISTRY
)
APP_HEALTH = Gauge(
    "tether_app_health",
    "1 for the app's current health status.",
    ["app", "status"],
    registry=REGISTRY,
)
GIT_FETCH_DURATION = Histogram(
    "tether_git_fetch_duration_seconds",
    "Duration of one fetch of a GitSource.",
    ["source"],
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GIT_FETCH_FAILURES = Counter(
    "tether_git_fetch_failures_total",
    "Failed fetches of a GitSource.",
    ["source"],
    registry=REGISTRY,
)
IS_LEADER = Gauge(
    "tether_leader", "1 while this replica holds the leader Lease.", registry=REGISTRY
)

HEALTH_STATES = ("Healthy", "Progressing", "Missing", "Degraded", "Unknown")


def set_health(app: str, status: str) -> None:
    for state in HEALTH_STATES:
        APP_HEALTH.labels(app, state).set(1.0 if state == status else 0.0)


ALERTS_DROPPED = Counter(
    "tether_alerts_dropped_total",
    "Alerts dropped because the delivery queue was full (receivers down or slow).",
    registry=REGISTRY,
)
ALERTS_FAILED = Counter(
    "tether_alerts_failed_total",
    "Alert deliveries that failed after their retries.",
    registry=REGISTRY,
)
HEALS = Counter(
    "tether_drift_heals_total",
    "Drifted objects put back without a full pass (only what drifted was applied again).",
    ["app"],
    registry=REGISTRY,
)

# Progressive delivery (tether.delivery): where each target's rollout stands.
ROLLOUT_PHASE = Gauge(
    "tether_rollout_phase",
    "1 for the phase a target's rollout is in.",
    ["app", "target", "phase"],
    registry=REGISTRY,
)
ROLLOUT_STEP = Gauge(
    "tether_rollout_step",
    "The step a target's rollout is at.",
    ["app", "target"],
    registry=REGISTRY,
)
ROLLOUT_WEIGHT = Gauge(
    "tether_rollout_weight",
    "Percent of a target's traffic (replicas) on its candidate.",
    ["app", "target"],
    registry=REGISTRY,
)
ANALYSIS_MEASUREMENTS = Counter(
    "tether_analysis_measurements_total",
    "Analysis measurements taken for a target's rollout, by phase.",
    ["app", "target", "phase"],
    registry=REGISTRY,
)
ROLLOUT_DECISIONS = Counter(
    "tether_rollout_decisions_total",
    "Gate decisions taken in a target's rollouts (started, passed, aborted, promoted, ...).",
    ["app", "target", "decision"],
    registry=REGISTRY,
)
