"""The audit trail: an append-only record of every sync, in SQLite or PostgreSQL.

    store = AuditStore()                       # SQLite under $TETHER_STATE_DIR or ~/.local/state
    store = AuditStore("postgresql://tether:secret@db:5432/tether")   # a team's shared trail
    saved = store.record(SyncRecord(app=..., changes=changeset, result="succeeded", ...))
    store.history("shop", limit=10)            # newest first
    store.last("shop")
    store.record_render(RenderRecord.of("shop", revision, manifests))   # after a healthy sync
    store.last_good_render("shop", excluding=quarantined_digests)       # what a rollback applies

Nothing here updates or deletes a row. Secret values are never stored (see renders.py). Failures raise ``tether.errors.AuditError`` naming the
database with its password masked.
"""

from tether.audit.delivery import DeliveryRecord
from tether.audit.record import DRY_RUN, FAILED, RESULTS, SUCCEEDED, SyncRecord
from tether.audit.renders import RenderRecord
from tether.audit.store import AuditStore
from tether.audit.url import default_path, masked
from tether.core.actor import default_actor

__all__ = [
    "DRY_RUN",
    "FAILED",
    "RESULTS",
    "SUCCEEDED",
    "AuditStore",
    "DeliveryRecord",
    "RenderRecord",
    "SyncRecord",
    "default_actor",
    "default_path",
    "masked",
]
