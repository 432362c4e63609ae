"""Kinds from add-on controllers whose status does not follow the Ready convention.

``SealedSecret`` (bitnami.com): the sealed-secrets controller decrypts it into a Secret and
reports the outcome in a ``Synced`` condition, with ``status.observedGeneration`` beside it.
(``ExternalSecret`` needs no rule here: its ``Ready`` condition fits the generic one.)
"""

from __future__ import annotations

from tether.health._fields import Fields
from tether.health._verdict import Verdict, degraded, detailed, healthy, progressing


def sealed_secret(live: Fields) -> Verdict:
    """Synced=True → Healthy; False → Degraded; no verdict yet → Progressing.

    The generic step has already made an object whose ``observedGeneration`` is behind
    Progressing. Without a Synced condition, ``observedGeneration`` tells "not processed yet"
    (absent: Progressing) from "processed, nothing to report" (current: Healthy).
    """
    synced = live.condition("Synced")
    if synced is None:
        if live.has("status.observedGeneration"):
            return healthy()
        return progressing("SealedSecret: waiting for the sealed-secrets controller to unseal it")
    if synced.is_true:
        return healthy()
    if synced.is_false:
        return degraded(detailed("SealedSecret could not be unsealed", synced.explain()))
    return progressing(detailed("SealedSecret is being unsealed", synced.explain()))
