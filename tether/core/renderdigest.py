"""The digest of a whole render: what identifies "the same desired state" whatever the commit.

Two commits that render the same objects (a README edit on top of a bad change) have the same
render digest, so a quarantine keyed by it keeps holding; a revert or a fix renders another
digest, and the quarantine lifts. It is defined here once; delivery, audit and the agent
import it.

Each object is digested with ``tether.core.compare.digest``: sensitive objects (Secrets, objects
with values decrypted from Git) by their shape only, so the digest says nothing about secret
values and a rotated password alone does not change it. The per-object digests are sorted, so
the order in which files were rendered does not matter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from tether.core.compare import digest
from tether.core.objects import Manifest

DIGEST_PREFIX = "sha256:"


def render_digest(manifests: Iterable[Manifest]) -> str:
    """``sha256:<hex>`` over the sorted per-object digests of ``manifests``."""
    parts = sorted(digest(m.body, blind=m.sensitive) for m in manifests)
    return DIGEST_PREFIX + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def short_digest(value: str) -> str:
    """The first 12 hex digits of a render digest, as messages show it."""
    return value.removeprefix(DIGEST_PREFIX)[:12]
