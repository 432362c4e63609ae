"""What one ``tether lint`` run is asked to do: one settings object, filled in by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tether.cluster.kubeconfig import Connection


@dataclass(frozen=True)
class LintSettings:
    """``kustomize``: the binary overlays are built with (None: kustomizations fail to render).
    ``helm``: the binary chart Apps are rendered with (None: they fail to render).
    ``schema_cache``/``kubernetes_version``: where offline schemas are cached and which version
    to validate against (None: no offline validation). ``cluster``: server-side dry-run against
    this cluster instead. ``changed_since``: also judge the change since this ref.
    ``environments``: check only these environments' overlays and clusters (empty: all)."""

    kustomize: Path | None = None
    helm: Path | None = None
    schema_cache: Path | None = None
    kubernetes_version: str = ""
    cluster: Connection | None = None
    changed_since: str | None = None
    environments: tuple[str, ...] = ()
    render_timeout: float = 120.0
