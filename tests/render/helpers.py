"""Helpers of the render tests: writing files into a tree, manifests, expected errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tether.errors import RenderError
from tether.render import RenderSettings, render


def write(root: Path, relative: str, text: str) -> Path:
    """Write ``text`` (dedented) to ``root/relative``, creating directories."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def configmap(name: str, namespace: str | None = None) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}"]
    if namespace:
        lines.append(f"  namespace: {namespace}")
    lines += ["data:", "  key: value"]
    return "\n".join(lines) + "\n"


def render_error(root: Path, path: str = ".", settings: RenderSettings | None = None) -> str:
    """The message of the RenderError that rendering ``path`` must raise."""
    with pytest.raises(RenderError) as caught:
        render(root, path, settings or RenderSettings())
    return str(caught.value)
