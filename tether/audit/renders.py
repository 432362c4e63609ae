"""The renders that became healthy: what a rollback puts back, with Git out of the picture.

After a sync whose objects all became Healthy, the agent keeps the render it applied: the
revision, the render digest of what Git rendered (``tether.core.renderdigest``) and the objects
as applied (after the delivery layer's shaping: AnalysisTemplates taken out, annotations set). A row is added each
time an app's healthy render *changes* (A, B, then A again after a revert: three rows), so the
newest row is the newest good state, and nothing is ever updated in place.

Secret values are never stored: a sensitive object (a Secret, or any object with values
decrypted from Git) is kept by its identity only, in ``withheld``. A rollback leaves such
objects as they are live; they come back with the revert pull request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tether.audit.schema import renders
from tether.core import Manifest, ObjectRef, Revision, SourceLocation
from tether.core.renderdigest import render_digest


@dataclass(frozen=True)
class RenderRecord:
    """One healthy render of one app: what to apply again to put it back."""

    app: str
    revision: Revision
    digest: str
    manifests: tuple[Manifest, ...]
    withheld: tuple[ObjectRef, ...] = ()
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None

    @classmethod
    def of(
        cls, app: str, revision: Revision, manifests: list[Manifest], digest: str = ""
    ) -> RenderRecord:
        """The record of ``manifests`` applied from ``revision``: sensitive objects withheld.
        ``digest`` is the render digest of what Git rendered (default: of ``manifests``);
        the delivery layer may have shaped what was applied from it."""
        kept = tuple(m for m in manifests if not m.sensitive)
        withheld = tuple(sorted(m.ref for m in manifests if m.sensitive))
        return cls(app, revision, digest or render_digest(manifests), kept, withheld)


def insert_if_changed(connection: sa.Connection, record: RenderRecord) -> bool:
    """Add ``record`` unless the app's newest render has the same digest; True when added."""
    newest = newest_rows(connection, record.app, limit=1)
    if newest and newest[0]["digest"] == record.digest:
        return False
    connection.execute(sa.insert(renders).values(**_row(record)))
    return True


def newest_rows(
    connection: sa.Connection, app: str, *, limit: int, excluding: frozenset[str] = frozenset()
) -> list[sa.RowMapping]:
    """``app``'s renders, newest first, leaving out the digests in ``excluding``."""
    statement = sa.select(renders).where(renders.c.app == app)
    if excluding:
        statement = statement.where(renders.c.digest.not_in(sorted(excluding)))
    statement = statement.order_by(renders.c.id.desc()).limit(limit)
    return list(connection.execute(statement).mappings().all())


def row_at_revision(connection: sa.Connection, app: str, revision: str) -> sa.RowMapping | None:
    """``app``'s newest render of a commit starting with ``revision`` (a full or short SHA)."""
    statement = (
        sa.select(renders)
        .where(
            renders.c.app == app, renders.c.revision_commit.startswith(revision, autoescape=True)
        )
        .order_by(renders.c.id.desc())
        .limit(1)
    )
    return connection.execute(statement).mappings().first()


def record_of(row: sa.RowMapping) -> RenderRecord:
    revision = Revision(
        url=row["revision_url"],
        ref=row["revision_ref"],
        commit=row["revision_commit"],
        author=row["revision_author"],
        subject=row["revision_subject"],
    )
    manifests = tuple(
        Manifest(item["body"], SourceLocation(item.get("source") or "<render>"))
        for item in row["objects"]
    )
    withheld = tuple(ObjectRef(**item) for item in row["withheld"])
    return RenderRecord(
        app=row["app"],
        revision=revision,
        digest=row["digest"],
        manifests=manifests,
        withheld=withheld,
        recorded_at=row["recorded_at"],
        id=int(row["id"]),
    )


def _row(record: RenderRecord) -> dict[str, Any]:
    revision = record.revision
    return {
        "app": record.app,
        "digest": record.digest,
        "recorded_at": record.recorded_at,
        "revision_url": revision.url,
        "revision_ref": revision.ref,
        "revision_commit": revision.commit,
        "revision_author": revision.author,
        "revision_subject": revision.subject,
        "objects": [{"body": m.body, "source": str(m.source)} for m in record.manifests],
        "withheld": [_identity(ref) for ref in record.withheld],
    }


def _identity(ref: ObjectRef) -> dict[str, str]:
    return {"group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name}
