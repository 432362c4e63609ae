"""Progressive delivery: canary and blue-green rollouts of an App's Deployments, rollback and
quarantine.

    model.read_delivery(spec.delivery)           -> [DeliverySpec]   what the App asks for
    machine.advance(spec, status, observations)  -> Advance(status, actions)   pure
    shaping.shape_target(...)                    -> manifests: stable under the Git name,
                                                    the candidate beside it (``web-canary``)
    runner.DeliveryRunner                        the agent's side: observe, advance, act
    rollback.abort(host, app, reason=..., ...)   the last good render back with no Git round
                                                 trip, the bad render quarantined, the revert
                                                 pull request and failing commit status
    rollback.gate(...)                           each pass: a quarantined render is replaced by
                                                 the last good one; lifted once the head
                                                 renders something else
    quarantine, revert                           the entries (pure); the forge half

The layer sits between the agent and reconcile: it composes reconcile, audit, analysis, forge
and cluster. A rollout's state lives in ``App.status.delivery``, the quarantine in
``App.status.quarantine``, so any replica resumes them. See docs/delivery.md,
docs/rollback.md and docs/decisions/0019-delivery-model.md, 0020-rollback-and-quarantine.md.
"""
