"""Building SyncRecords for the audit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tether.audit import SyncRecord
from tether.core import Action, ChangeSet, ObjectRef, Revision

T0 = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
SOURCE = "https://git.example.com/platform/apps.git"


def changeset(dry_run: bool = False) -> ChangeSet:
    changes = ChangeSet(dry_run=dry_run)
    changes.add(ObjectRef("", "Namespace", "", "shop"), Action.CREATED)
    changes.add(ObjectRef("apps", "Deployment", "shop", "web"), Action.CONFIGURED)
    changes.add(ObjectRef("", "Service", "shop", "web"), Action.UNCHANGED)
    changes.add(ObjectRef("", "ConfigMap", "shop", "old"), Action.PRUNED)
    changes.add(
        ObjectRef("batch", "CronJob", "shop", "report"), Action.SKIPPED, "owned by app billing"
    )
    changes.add(
        ObjectRef("networking.k8s.io", "Ingress", "shop", "web"),
        Action.FAILED,
        'admission webhook denied: host "shop.example.com" is taken',
    )
    return changes


def revision(commit: str = "3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b") -> Revision:
    return Revision(SOURCE, "main", commit, "Alice Example <alice@example.com>", "shop: scale web")


def sync(app: str = "shop", minutes: float = 0, **overrides: Any) -> SyncRecord:
    """A succeeded sync of ``app`` started ``minutes`` after T0."""
    fields: dict[str, Any] = {
        "app": app,
        "source_url": SOURCE,
        "revision": revision(),
        "changes": changeset(),
        "result": "succeeded",
        "error": "",
        "started_at": T0 + timedelta(minutes=minutes),
        "duration_seconds": 2.5,
        "actor": "alice@laptop",
        "health": "Healthy",
    }
    fields.update(overrides)
    return SyncRecord(**fields)
