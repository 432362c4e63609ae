"""Progressive delivery: canary and blue-green rollouts of an App's Deployments.

    model.read_delivery(spec.delivery)           -> [DeliverySpec]   what the App asks for
    machine.advance(spec, status, observations)  -> Advance(status, actions)   pure
    shaping.shape_target(...)                    -> manifests: stable under the Git name,
                                                    the candidate beside it (``web-canary``)
    runner.DeliveryRunner                        the agent's side: observe, advance, act

The layer sits between the agent and reconcile: it composes reconcile, audit, analysis and
cluster. A rollout's state lives in ``App.status.delivery`` so any replica resumes it.
See docs/delivery.md and docs/decisions/0019-delivery-model.md.
"""
