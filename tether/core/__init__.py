"""Pure data shared by every layer: no I/O here, only the vocabulary (refs, manifests, changes,
health, revisions, inventories)."""

from tether.core.changes import Action, Change, ChangeSet
from tether.core.health import HealthReport, HealthStatus, ObjectHealth
from tether.core.objects import Manifest, ObjectRef, SourceLocation
from tether.core.revision import Revision

__all__ = [
    "Action",
    "Change",
    "ChangeSet",
    "HealthReport",
    "HealthStatus",
    "Manifest",
    "ObjectHealth",
    "ObjectRef",
    "Revision",
    "SourceLocation",
]
