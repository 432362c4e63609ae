"""A post-render step for charts: kustomize patches applied to what ``helm template`` rendered.

    post_render(manifests, output, patches, label, settings, problems) -> [Manifest]

Each patch is a file of the repository (read by ``read_patch``, confined to it, checked with
Tether's YAML reader): a strategic-merge patch naming its target by ``apiVersion``, ``kind`` and
``metadata.name`` (and ``metadata.namespace`` when it matters), as kustomize's ``patches:
- path:`` takes it. The chart's rendered output and the patches are written to a scratch
directory with a kustomization listing them, and built with ``kustomize build`` exactly as any
kustomization is (plugins off, time and memory limits: see ``_kustomize.py``). A patch whose
target the chart does not render is an error (kustomize says so), not silently ignored.

Every patched object keeps pointing at its chart template.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.core import Manifest
from tether.errors import RenderError
from tether.render._kustomize import build
from tether.render._problems import Problems
from tether.render._settings import RenderSettings
from tether.render._tree import Entry, Tree
from tether.render._yaml import SyntaxProblem, load_yaml


@dataclass(frozen=True)
class Patch:
    """One patch file: its path in the repository (``label``) and its text."""

    label: str
    text: str


def read_patch(root: Path, path: str, settings: RenderSettings) -> Patch:
    """The patch file ``path`` of the repository ``root``: one mapping naming its target."""
    real, label = Tree.open(root, settings.read_limits).locate(path)
    try:
        text = real.read_text(encoding="utf-8-sig")
        documents = [d for d in load_yaml(text, settings.yaml_limits) if d.data is not None]
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"patch {label}: cannot be read: {exc}") from None
    except SyntaxProblem as exc:
        raise RenderError(f"patch {exc.at(label)}") from None
    problems = Problems()
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        problems.add(f"{label}: a patch is one YAML mapping (a strategic-merge patch)")
    else:
        data = documents[0].data
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        if not (data.get("apiVersion") and data.get("kind") and (metadata or {}).get("name")):
            problems.add(
                f"{label}:{documents[0].line}: a patch names its target with apiVersion, kind "
                "and metadata.name"
            )
    problems.raise_if_any(f"patch {label}")
    return Patch(label, text)


def post_render(
    manifests: list[Manifest],
    patches: Sequence[Patch],
    label: str,
    settings: RenderSettings,
    problems: Problems,
) -> list[Manifest]:
    """``manifests`` with ``patches`` applied by kustomize; their sources kept."""
    if not patches:
        return manifests
    sources = {manifest.ref: manifest.source for manifest in manifests}
    with tempfile.TemporaryDirectory(prefix="tether-post-render-") as scratch:
        directory = Path(scratch).resolve()
        rendered = "".join(f"---\n{json.dumps(m.body)}\n" for m in manifests)
        (directory / "rendered.yaml").write_text(rendered)
        entries = []
        for index, patch in enumerate(patches):
            name = f"patch-{index}.yaml"
            (directory / name).write_text(patch.text)
            entries.append({"path": name})
        kustomization = {"resources": ["rendered.yaml"], "patches": entries}
        (directory / "kustomization.yaml").write_text(json.dumps(kustomization))
        entry = Entry(directory, f"{label} (post-render)", directory / "kustomization.yaml")
        before = len(problems)
        patched = build(Tree.open(directory), entry, settings, problems)
    if len(problems) > before:
        return []
    return [Manifest(m.body, sources.get(m.ref, m.source)) for m in patched]
