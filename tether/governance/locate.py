"""Pointing a rendered object back at the file and line that define it.

kustomize's output has no positions, so an object built from an overlay is matched with the
manifests the repository defines: same kind and name (or the name kustomize derived from it with
a prefix, suffix or hash), preferring the unit's own directory, then its app (or the platform),
then anywhere. Objects a generator made point at the line of the kustomization naming them.

Findings about a field then point at that field's line in the file (as far as the file has
it), and image findings at the overlay's ``images:`` entry when the overlay sets the image.
"""

from __future__ import annotations

from dataclasses import replace

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tether.core import Manifest, SourceLocation, kubeyaml
from tether.governance.repository import Repository, under
from tether.policy.findings import Finding, field_parts
from tether.policy.layout import APPS, KUSTOMIZATION_FILES, MANIFEST_SUFFIXES, PLATFORM, place_of

KUSTOMIZE_OUTPUT = " (kustomize output)"


def locate(manifest: Manifest, unit: str, repository: Repository) -> Manifest:
    """``manifest`` with ``source`` naming a real file of the repository."""
    if not manifest.source.path.endswith(KUSTOMIZE_OUTPUT):
        return manifest
    kind, name = manifest.kind, manifest.ref.name
    candidates = repository.objects.get((kind, name), [])
    if not candidates:
        derived = [
            (len(source_name), location)
            for (source_kind, source_name), locations in repository.objects.items()
            if source_kind == kind and source_name in name
            for location in locations
        ]
        longest = max((length for length, _ in derived), default=0)
        candidates = [location for length, location in derived if length == longest]
    if candidates:
        return replace(manifest, source=_closest(candidates, unit))
    return replace(manifest, source=_generator_line(name, unit, repository))


def _closest(candidates: list[SourceLocation], unit: str) -> SourceLocation:
    place = place_of(f"{unit}/x")
    family = f"{APPS}/{place.app}" if place.app else (PLATFORM if place.layer == PLATFORM else "")

    def rank(location: SourceLocation) -> tuple[int, str, int]:
        if under(location.path, unit):
            return 0, location.path, location.line
        if family and under(location.path, family):
            return 1, location.path, location.line
        return 2, location.path, location.line

    return min(candidates, key=rank)


def _generator_line(name: str, unit: str, repository: Repository) -> SourceLocation:
    for file_name in KUSTOMIZATION_FILES:
        path = f"{unit}/{file_name}"
        text = repository.read(path) if (repository.root / path).is_file() else None
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if (
                "name:" in line
                and line.split("name:", 1)[1].strip().strip("\"'")
                and (line.split("name:", 1)[1].strip().strip("\"'") in name)
            ):
                return SourceLocation(path, number)
        return SourceLocation(path, 0)
    return SourceLocation(unit, 0)


def _documents(repository: Repository, path: str) -> list[Node]:
    text = repository.read(path) if (repository.root / path).is_file() else None
    if not text:
        return []
    try:
        return [node for node in kubeyaml.compose_all(text) if node is not None]
    except kubeyaml.YamlProblem:  # the render reports it, limits included
        return []


def _object_at(nodes: list[Node], line: int) -> MappingNode | None:
    pending = list(nodes)
    while pending:
        node = pending.pop(0)
        if isinstance(node, MappingNode):
            if node.start_mark.line + 1 == line and any(
                isinstance(k, ScalarNode) and k.value == "kind" for k, _ in node.value
            ):
                return node
            pending += [value for _, value in node.value]
        elif isinstance(node, SequenceNode):
            pending += node.value
    return None


def field_line(repository: Repository, path: str, line: int, field: str) -> int:
    """The line of ``field`` in the object starting at ``path:line`` (as deep as it exists in
    the file; ``line`` when the object is not found)."""
    node: Node | None = _object_at(_documents(repository, path), line)
    if node is None:
        return line
    found = line
    for part in field_parts(field):
        if isinstance(node, MappingNode) and isinstance(part, str):
            match = next(
                ((k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part),
                None,
            )
            if match is None:
                break
            found, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            found = node.start_mark.line + 1
        else:
            break
    return found


def image_override(repository: Repository, unit: str, image: str) -> SourceLocation | None:
    """Where the unit's kustomization sets ``image``'s tag or digest (its ``images:`` entry)."""
    rendered = image.partition("@")[0]
    slash, colon = rendered.rfind("/"), rendered.rfind(":")
    name = rendered[:colon] if colon > slash else rendered
    for file_name in KUSTOMIZATION_FILES:
        path = f"{unit}/{file_name}"
        for document in _documents(repository, path):
            entries = _get(document, "images")
            if not isinstance(entries, SequenceNode):
                continue
            for entry in entries.value:
                if not isinstance(entry, MappingNode):
                    continue
                names = {_value(entry, "name"), _value(entry, "newName")} - {""}
                if name not in names:
                    continue
                for key in ("digest", "newTag", "newName", "name"):
                    found = _get_key(entry, key)
                    if found is not None:
                        return SourceLocation(path, found.start_mark.line + 1)
    return None


def _get_key(node: Node, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return key_node
    return None


def _get(node: Node, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return value_node if isinstance(value_node, Node) else None
    return None


def _value(node: Node, key: str) -> str:
    found = _get(node, key)
    return str(found.value) if isinstance(found, ScalarNode) else ""


def refine(finding: Finding, unit: str, repository: Repository) -> Finding:
    """``finding`` pointing at the line of its field, or at the overlay line that set an image."""
    if finding.rule in ("image-latest", "image-unpinned"):
        override = image_override(repository, unit, finding.subject)
        if override is not None:
            return finding.at(override.path, override.line)
    if finding.field and finding.line > 0 and finding.path.endswith(MANIFEST_SUFFIXES):
        return finding.at(
            finding.path, field_line(repository, finding.path, finding.line, finding.field)
        )
    return finding
