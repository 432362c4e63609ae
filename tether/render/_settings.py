"""How a render may run external tools: one settings object for the whole piece."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tether.core.kubeyaml import DEFAULT_LIMITS, YamlLimits


@dataclass(frozen=True)
class RenderSettings:
    """``kustomize``: the kustomize binary; None makes a kustomization a render error.
    ``timeout``: seconds one ``kustomize build`` may take.
    ``kustomize_memory``: bytes of address space one ``kustomize build`` may use.
    ``yaml_limits``: what one manifest file or one kustomize output may ask of the YAML reader.
    ``helm``: the helm binary; None makes a chart a render error. ``timeout`` bounds one
    ``helm template`` too; ``helm_memory``: bytes of address space it may use.
    """

    kustomize: Path | None = None
    timeout: float = 120.0
    kustomize_memory: int = 2 * 1024**3
    yaml_limits: YamlLimits = DEFAULT_LIMITS
    helm: Path | None = None
    helm_memory: int = 2 * 1024**3
