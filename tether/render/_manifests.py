"""From parsed documents to ``Manifest`` objects: shape checks, List expansion, unique identities.

A document becomes a manifest when it is a mapping with a string ``apiVersion``, ``kind`` and
``metadata.name``. ``metadata.generateName`` is refused: Tether tracks, diffs and prunes objects
by name, so every object needs a stable one. Empty documents are skipped. A ``List`` (any kind
ending in ``List`` with an ``items`` list) stands for its items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tether.core import Manifest, ObjectRef, SourceLocation
from tether.core.kubeyaml import DEFAULT_LIMITS, YamlLimits
from tether.render._problems import Problems
from tether.render._yaml import Document, SyntaxProblem, load_json, load_yaml

JSON_SUFFIXES = (".json",)
YAML_SUFFIXES = (".yaml", ".yml")


def read_file(
    real: Path, label: str, problems: Problems, limits: YamlLimits = DEFAULT_LIMITS
) -> list[Manifest]:
    """The manifests of one YAML or JSON file; ``label`` is its path relative to the root."""
    try:
        text = real.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(f"{label}: not UTF-8 text (byte {exc.start}); save the file as UTF-8")
        return []
    except OSError as exc:
        problems.add(f"{label}: cannot be read: {exc.strerror or exc}")
        return []
    try:
        is_json = label.lower().endswith(JSON_SUFFIXES)
        documents = [load_json(text, limits)] if is_json else load_yaml(text, limits)
    except SyntaxProblem as exc:
        problems.add(exc.at(label))
        return []
    return from_documents(documents, label, problems)


def from_documents(documents: list[Document], label: str, problems: Problems) -> list[Manifest]:
    """The manifests of parsed documents, reporting the documents that are not objects."""
    manifests: list[Manifest] = []
    for document in documents:
        data = document.data
        if data is None:
            continue
        if _is_list(data):
            items = data.get("items") or []
            if not isinstance(items, list):
                problems.add(f"{label}:{document.line}: {data['kind']} 'items' must be a list")
                continue
            for index, item in enumerate(items):
                location = SourceLocation(label, document.item_line(index))
                manifest = _manifest(item, location, problems)
                if manifest is not None:
                    manifests.append(manifest)
            continue
        manifest = _manifest(data, SourceLocation(label, document.line), problems)
        if manifest is not None:
            manifests.append(manifest)
    return manifests


def check_unique(manifests: list[Manifest], problems: Problems) -> None:
    """Report every object defined more than once (same group, kind, namespace and name)."""
    first: dict[ObjectRef, SourceLocation] = {}
    for manifest in manifests:
        ref = manifest.ref
        if ref in first:
            problems.add(
                f"{manifest.source}: {ref} is defined twice, here and at {first[ref]}; "
                "remove one of them or rename it"
            )
        else:
            first[ref] = manifest.source


def _is_list(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("kind"), str)
        and data["kind"].endswith("List")
        and "items" in data
    )


def _manifest(data: Any, location: SourceLocation, problems: Problems) -> Manifest | None:
    if not isinstance(data, dict):
        problems.add(
            f"{location}: a {_type_name(data)} is not a Kubernetes object "
            "(expected a mapping with apiVersion, kind and metadata.name)"
        )
        return None
    faults = _faults(data)
    if faults:
        problems.add(f"{location}: {_describe(data)}{'; '.join(faults)}")
        return None
    return Manifest(data, location)


def _faults(body: dict[str, Any]) -> list[str]:
    faults: list[str] = []
    missing = [key for key in ("apiVersion", "kind") if key not in body or body[key] in ("", None)]
    faults += [
        f"{key} must be a string"
        for key in ("apiVersion", "kind")
        if key not in missing and not isinstance(body[key], str)
    ]
    metadata = body.get("metadata")
    if metadata is None:
        missing.append("metadata.name")
    elif not isinstance(metadata, dict):
        faults.append("metadata must be a mapping")
    else:
        name = metadata.get("name")
        if name in ("", None):
            if metadata.get("generateName"):
                faults.append(
                    "metadata.generateName is not supported: Tether needs a stable "
                    "metadata.name to track the object; set metadata.name instead"
                )
            else:
                missing.append("metadata.name")
        elif not isinstance(name, str):
            faults.append(f'metadata.name must be a string (quote it: name: "{name}")')
        namespace = metadata.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            faults.append(
                f'metadata.namespace must be a string (quote it: namespace: "{namespace}")'
            )
    if missing:
        faults.insert(0, f"missing {', '.join(missing)}")
    return faults


def _describe(body: dict[str, Any]) -> str:
    """``Deployment 'web': `` when kind or name is known, to help find the object."""
    kind = body.get("kind") if isinstance(body.get("kind"), str) else ""
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if kind and isinstance(name, str) and name:
        return f"{kind} {name!r}: "
    if kind:
        return f"{kind}: "
    if isinstance(name, str) and name:
        return f"object {name!r}: "
    return ""


def _type_name(data: Any) -> str:
    if data is None:
        return "null value"
    if isinstance(data, list):
        return "list"
    if isinstance(data, str):
        return "string"
    if isinstance(data, bool):
        return "boolean"
    if isinstance(data, int | float):
        return "number"
    return type(data).__name__
