"""The renders that became healthy: what a rollback puts back, with Git out of the picture.

After a sync whose objects all became Healthy, the agent keeps the render it applied: the
revision, the render digest of what Git rendered (``tether.core.renderdigest``) and the objects
as applied (after the delivery layer's shaping: AnalysisTemplates taken out, annotations set). A
row is added to ``tether_renders`` each time an app's healthy render *changes* (A, B, then A
again after a revert: three rows), so the newest row is the newest good state; a render's
objects are never updated in place.

The same render applied again at a later commit (a README edit on top, a no-op merge) adds no
second copy of the objects: ``tether_render_commits`` gets a small row naming that commit, so
the render is known by the NEWEST commit that applied it (what a rollback and its revert pull
request name) and can be found by ANY commit that applied it (``tether rollback --to REV``).
A database written before that table existed gains it on open and reads as before: a render
with no row there is known by the commit it was first recorded at.

Secret values are never stored: a sensitive object (a Secret, or any object with values
decrypted from Git) is kept by its identity only, in ``withheld``. A rollback leaves such
objects as they are live; they come back with the revert pull request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tether.audit.schema import UTCDateTime, metadata, renders
from tether.core import Manifest, ObjectRef, Revision, SourceLocation
from tether.core.renderdigest import render_digest

RENDER_COMMITS_TABLE = "tether_render_commits"

# One row per later commit that applied an already recorded render again.
render_commits = sa.Table(
    RENDER_COMMITS_TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("render_id", sa.Integer, nullable=False),  # tether_renders.id
    sa.Column("app", sa.String, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("revision_url", sa.Text, nullable=False),
    sa.Column("revision_ref", sa.String, nullable=False),
    sa.Column("revision_commit", sa.String, nullable=False),
    sa.Column("revision_author", sa.Text, nullable=False),
    sa.Column("revision_subject", sa.Text, nullable=False),
    sa.Index("ix_tether_render_commits_render_id", "render_id", "id"),
    sa.Index("ix_tether_render_commits_app_commit", "app", "revision_commit"),
)


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
    """Add ``record`` unless the app's newest render has the same digest; True when added.
    The same digest at another commit is remembered as applied there (``render_commits``)."""
    newest = _newest_rows(connection, record.app, limit=1)
    if newest and newest[0]["digest"] == record.digest:
        row = newest[0]
        if _latest_revision(connection, row).commit != record.revision.commit:
            connection.execute(
                sa.insert(render_commits).values(
                    render_id=row["id"],
                    app=record.app,
                    recorded_at=record.recorded_at,
                    **_revision_columns(record.revision),
                )
            )
        return False
    connection.execute(sa.insert(renders).values(**_row(record)))
    return True


def newest(
    connection: sa.Connection, app: str, *, limit: int, excluding: frozenset[str] = frozenset()
) -> list[RenderRecord]:
    """``app``'s renders, newest first, leaving out the digests in ``excluding``; each known by
    the newest commit that applied it."""
    rows = _newest_rows(connection, app, limit=limit, excluding=excluding)
    return [_record(row, _latest_revision(connection, row)) for row in rows]


def at_revision(connection: sa.Connection, app: str, revision: str) -> RenderRecord | None:
    """``app``'s newest render applied at a commit starting with ``revision`` (a full or short
    SHA), whether it was first recorded at that commit or applied again there; known by that
    commit."""
    again = (
        sa.select(render_commits)
        .where(
            render_commits.c.app == app,
            render_commits.c.revision_commit.startswith(revision, autoescape=True),
        )
        .order_by(render_commits.c.render_id.desc(), render_commits.c.id.desc())
        .limit(1)
    )
    applied = connection.execute(again).mappings().first()
    first = (
        sa.select(renders)
        .where(
            renders.c.app == app, renders.c.revision_commit.startswith(revision, autoescape=True)
        )
        .order_by(renders.c.id.desc())
        .limit(1)
    )
    row = connection.execute(first).mappings().first()
    if applied is not None and (row is None or int(applied["render_id"]) > int(row["id"])):
        found = (
            connection.execute(sa.select(renders).where(renders.c.id == applied["render_id"]))
            .mappings()
            .first()
        )
        return None if found is None else _record(found, _revision_of(applied))
    return None if row is None else _record(row, _revision_of(row))


def _newest_rows(
    connection: sa.Connection, app: str, *, limit: int, excluding: frozenset[str] = frozenset()
) -> list[sa.RowMapping]:
    statement = sa.select(renders).where(renders.c.app == app)
    if excluding:
        statement = statement.where(renders.c.digest.not_in(sorted(excluding)))
    statement = statement.order_by(renders.c.id.desc()).limit(limit)
    return list(connection.execute(statement).mappings().all())


def _latest_revision(connection: sa.Connection, row: sa.RowMapping) -> Revision:
    """The newest commit that applied the render ``row`` (its own when none applied it again)."""
    statement = (
        sa.select(render_commits)
        .where(render_commits.c.render_id == row["id"])
        .order_by(render_commits.c.id.desc())
        .limit(1)
    )
    again = connection.execute(statement).mappings().first()
    return _revision_of(again if again is not None else row)


def _revision_of(row: sa.RowMapping) -> Revision:
    return Revision(
        url=row["revision_url"],
        ref=row["revision_ref"],
        commit=row["revision_commit"],
        author=row["revision_author"],
        subject=row["revision_subject"],
    )


def _record(row: sa.RowMapping, revision: Revision) -> RenderRecord:
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


def _revision_columns(revision: Revision) -> dict[str, str]:
    return {
        "revision_url": revision.url,
        "revision_ref": revision.ref,
        "revision_commit": revision.commit,
        "revision_author": revision.author,
        "revision_subject": revision.subject,
    }


def _row(record: RenderRecord) -> dict[str, Any]:
    return {
        "app": record.app,
        "digest": record.digest,
        "recorded_at": record.recorded_at,
        **_revision_columns(record.revision),
        "objects": [{"body": m.body, "source": str(m.source)} for m in record.manifests],
        "withheld": [_identity(ref) for ref in record.withheld],
    }


def _identity(ref: ObjectRef) -> dict[str, str]:
    return {"group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name}
