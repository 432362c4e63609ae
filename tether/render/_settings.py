"""How a render may run external tools and what it may read: one settings object for the piece."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tether.core.kubeyaml import DEFAULT_LIMITS, YamlLimits


class ReadLimits(Protocol):
    """The repository paths a render may read (``tether.policy.access.PathLimits`` is one).

    Paths are relative to the repository root in normal form (``tether.core.repopath``).
    """

    def allows(self, path: str) -> bool:
        """Whether the file or directory ``path`` may be read."""
        ...

    def may_contain(self, directory: str) -> bool:
        """Whether something under ``directory`` may be read (False lets a walk skip it)."""
        ...

    def describe(self) -> str:
        """The limits in words, for messages: ``the paths team 'web' may deploy from (…)``."""
        ...


@dataclass(frozen=True)
class RenderSettings:
    """``kustomize``: the kustomize binary; None makes a kustomization a render error.
    ``timeout``: seconds the kustomize builds of one render may take, together.
    ``kustomize_memory``: bytes of address space one ``kustomize build`` may use.
    ``yaml_limits``: what one manifest file or one kustomize output may ask of the YAML reader.
    ``read_limits``: the only repository paths the render may read (a team's or Project's
    source paths); None means the whole repository. With limits, kustomize builds a copy of
    the repository holding only those paths (see ``_view.py``).
    ``helm``: the helm binary; None makes a chart a render error. ``timeout`` bounds one
    ``helm template`` too; ``helm_memory``: bytes of address space it may use.
    """

    kustomize: Path | None = None
    timeout: float = 120.0
    kustomize_memory: int = 2 * 1024**3
    yaml_limits: YamlLimits = DEFAULT_LIMITS
    read_limits: ReadLimits | None = None
    helm: Path | None = None
    helm_memory: int = 2 * 1024**3
