"""How a render may run external tools: one settings object for the whole piece."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RenderSettings:
    """``kustomize``: the kustomize binary; None makes a kustomization a render error.
    ``timeout``: seconds one ``kustomize build`` may take."""

    kustomize: Path | None = None
    timeout: float = 120.0
