"""What was deployed: the exact commit of a source, with who wrote it and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Revision:
    """A resolved source revision. ``url`` never carries credentials (they are masked first)."""

    url: str
    ref: str
    commit: str
    author: str = ""
    subject: str = ""

    @property
    def short(self) -> str:
        """The first 12 hex digits of a commit, or of a ``sha256:`` digest (OCI, charts)."""
        algorithm, colon, digest = self.commit.partition(":")
        return f"{algorithm}:{digest[:12]}" if colon else self.commit[:12]

    def __str__(self) -> str:
        return f"{self.ref}@{self.short}" if self.ref else self.short

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
