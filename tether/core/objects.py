"""Identities and desired objects.

An ``ObjectRef`` is what makes two manifests "the same object": API group, kind, namespace and
name. The API version is deliberately not part of it (apps/v1 and apps/v1beta2 Deployments named
alike are one object). A ``Manifest`` is one desired object as read from Git, with the file and
line it came from so every error can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class ObjectRef:
    """The identity of a Kubernetes object. ``namespace`` is "" for cluster-scoped objects."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> ObjectRef:
        """The identity of a plain object dict (as read from YAML or from the API)."""
        api_version = str(body.get("apiVersion", ""))
        group = api_version.rpartition("/")[0]
        metadata = body.get("metadata") or {}
        return cls(
            group,
            str(body.get("kind", "")),
            str(metadata.get("namespace") or ""),
            str(metadata.get("name", "")),
        )

    @property
    def group_kind(self) -> str:
        """``Kind.group`` as kubectl and the ApplySet annotations spell it (``Kind`` for core)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def __str__(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped): how errors name objects."""
        kind = self.group_kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


@dataclass(frozen=True)
class SourceLocation:
    """Where a manifest came from: a path relative to the rendered root, and a 1-based line."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass
class Manifest:
    """One desired object: its body as a plain dict, and where it was read from.

    ``decrypted``: the paths of the values that were SOPS-encrypted in Git (``("data",
    "password")``), empty when none were (see ``sensitive``).
    """

    body: dict[str, Any]
    source: SourceLocation = field(default_factory=lambda: SourceLocation("<generated>"))
    decrypted: tuple[tuple[str | int, ...], ...] = ()

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.body)

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def is_crd(self) -> bool:
        return self.kind == "CustomResourceDefinition" and self.api_version.startswith(
            "apiextensions.k8s.io/"
        )

    @property
    def sensitive(self) -> bool:
        """Its values must never be shown: a Secret, or an object with decrypted values. The API
        server's echo of such an object's values is left out of errors, and its applied digest
        is computed without its values (docs/decisions/0015-leaks-and-clean-failures.md)."""
        return bool(self.decrypted) or (self.kind == "Secret" and self.api_version == "v1")

    @property
    def is_namespace(self) -> bool:
        return self.kind == "Namespace" and self.api_version == "v1"
