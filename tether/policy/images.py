"""Environment rules for container images: no ``latest`` in prod, every image pinned.

Images are found wherever a ``containers``, ``initContainers`` or ``ephemeralContainers`` list
holds them, so Deployments, Jobs, CronJobs, Pods and custom resources embedding a pod template
are all covered. An image without a tag or digest is pulled as ``latest``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tether.core import Manifest
from tether.policy.config import ImageRules
from tether.policy.findings import Finding, field_path
from tether.policy.rules import RULES

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True)
class ImageRef:
    """``repository[:tag][@digest]`` taken apart."""

    repository: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        rest, _, digest = image.partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            return cls(rest[:colon], rest[colon + 1 :], digest)
        return cls(rest, "", digest)


def images(body: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, str, str]]:
    """Every ``(field, container name, image)`` of an object, wherever its pod templates sit."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in _CONTAINER_LISTS and isinstance(value, list):
                for index, container in enumerate(value):
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        field = field_path((*path, key, index, "image"))
                        yield field, str(container.get("name", "")), container["image"]
            else:
                yield from images(value, (*path, str(key)))
    elif isinstance(body, list):
        for index, item in enumerate(body):
            yield from images(item, (*path, index))


def check(manifests: tuple[Manifest, ...], environment: str, rules: ImageRules) -> list[Finding]:
    """Findings for the images of ``manifests`` deployed to ``environment``."""
    if not rules.any:
        return []
    findings: list[Finding] = []
    for manifest in manifests:
        for field, container, image in images(manifest.body):
            problem = _problem(ImageRef.parse(image), rules)
            if problem is None:
                continue
            rule_id, why = problem
            rule = RULES[rule_id]
            findings.append(
                Finding(
                    rule_id,
                    manifest.source.path,
                    f"{manifest.ref}: container {container!r} image {image!r} {why} "
                    f"({environment} forbids it)",
                    manifest.source.line,
                    rule.severity,
                    rule.hint,
                    subject=image,
                    field=field,
                )
            )
    return findings


def _problem(ref: ImageRef, rules: ImageRules) -> tuple[str, str] | None:
    if rules.require_digest and not ref.digest:
        return "image-unpinned", "has no digest"
    if ref.digest:
        return None
    if not ref.tag and (rules.require_tag_or_digest or rules.forbid_latest):
        return "image-unpinned", "has neither tag nor digest, so it means latest"
    if ref.tag == "latest" and rules.forbid_latest:
        return "image-latest", "uses the latest tag"
    return None
