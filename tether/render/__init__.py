"""Rendering: turning a directory of a repository tree into the manifests it declares.

    render(root, path, settings) -> [Manifest]      RenderError lists every problem at once

A directory holding a kustomization (``kustomization.yaml``, ``kustomization.yml`` or
``Kustomization``) is built with the kustomize binary named in ``RenderSettings``; any other
directory is read as plain manifests: every ``*.yaml``, ``*.yml`` and ``*.json`` file under it,
recursively, in path order, hidden files and directories skipped. A subdirectory of a plain
directory that holds a kustomization is built with kustomize as one unit, in its place.

Nothing outside ``root`` is ever read, remote kustomize bases are refused, and kustomize runs
without plugins, under a time and a memory limit. With ``RenderSettings.read_limits`` (a team's
or Project's source paths) nothing outside those paths is read either: not through a symlink,
not through a kustomize reference (checked, naming file and line, and made impossible by
building in a confined copy of the repository). Every manifest carries the file and line it came
from. Namespaces are left as written: defaulting them is the caller's job, as is deciding
whether an empty render is fine.

A Helm chart is rendered by ``render_chart`` with the helm binary named in ``RenderSettings``
(``helm template``, hermetic, under time and memory limits; see ``_helm.py``):

    render_chart(Chart(path, label, release, namespace, values, capabilities), settings)
    read_values(root, "values/prod.yaml", settings) -> dict      merge_values([...]) -> dict
    parse_values(text, label, settings) -> dict    Chart(..., set_values=(SetValue("--set", "a=b"),))
    read_patch(root, "patches/web.yaml", settings) -> Patch      Chart(..., patches=(patch,))

This piece imports only ``tether.core`` and ``tether.errors``. See ``docs/rendering.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

from tether.core import Manifest
from tether.render._helm import (
    SET_FLAGS,
    Capabilities,
    Chart,
    SetValue,
    merge_values,
    parse_values,
    read_values,
    render_chart,
)
from tether.render._kustomize import build
from tether.render._manifests import check_unique, read_file
from tether.render._postrender import Patch, read_patch
from tether.render._problems import Problems
from tether.render._settings import ReadLimits, RenderSettings
from tether.render._tree import Tree

__all__ = [
    "SET_FLAGS",
    "Capabilities",
    "Chart",
    "Patch",
    "ReadLimits",
    "RenderSettings",
    "SetValue",
    "merge_values",
    "parse_values",
    "read_patch",
    "read_values",
    "render",
    "render_chart",
]

_DEFAULT_SETTINGS = RenderSettings()


def render(
    root: Path, path: str = ".", settings: RenderSettings = _DEFAULT_SETTINGS
) -> list[Manifest]:
    """The manifests of directory ``path`` of the repository tree ``root``, in a stable order
    (file path order, then document order; kustomize's order for a kustomization).

    Raises ``RenderError`` naming every problem found (file:line and what to do): malformed YAML,
    documents that are not objects, missing ``apiVersion``/``kind``/``metadata.name``, an object
    defined twice, a path or symlink leaving ``root`` or the read limits, a remote kustomize
    base, a failed build (out of time or memory included).
    """
    tree = Tree.open(root, settings.read_limits)
    start, label = tree.locate(path)
    problems = Problems()
    manifests: list[Manifest] = []
    deadline = time.monotonic() + settings.timeout
    for entry in tree.walk(start, label, problems):
        if entry.kustomization is not None:
            manifests += build(tree, entry, settings, problems, deadline)
        else:
            manifests += read_file(entry.real, entry.label, problems, settings.yaml_limits)
    check_unique(manifests, problems)
    problems.raise_if_any(repr(label))
    return manifests
