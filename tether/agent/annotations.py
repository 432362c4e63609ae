"""The annotations and finalizer the agent reads on Tether's own objects (Apps and sources).

They are how people and the CLI talk to the agent (``tether reconcile``, ``tether rollback``,
``tether rollout ...`` write them; the CLI never touches workloads), so they live in a module
without dependencies: the CLI imports it without the agent's stack.
"""

from __future__ import annotations

# A new value asks for a reconcile now (App and sources).
REQUESTED_ANNOTATION = "tether.dev/reconcile-requested-at"
# Held on every App the agent manages, so that deleting the App first deletes what it applied.
FINALIZER = "tether.dev/cleanup"
# ``orphan`` on an App keeps its objects when the App is deleted (only the inventory goes).
DELETION_POLICY_ANNOTATION = "tether.dev/deletion-policy"
# ``tether rollback`` asks through the App: a JSON object
# ``{"to": REV | null, "reason": ..., "by": ..., "at": ...}``, acted on once per ``at``.
ROLLBACK_REQUEST_ANNOTATION = "tether.dev/rollback-request"
# ``tether rollout promote|abort|retry`` write tether.delivery.model.ACTION_ANNOTATION (and its
# -by, -reason companions), defined beside the rollout model that reads it.
