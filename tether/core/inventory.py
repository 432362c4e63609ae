"""The inventory of an app: which objects it manages, recorded with the Kubernetes ApplySet
convention (KEP-3659) so that kubectl and other tools can read it.

The parent is a ConfigMap named after the app in the inventory namespace. Its labels and
annotations say which group-kinds and namespaces hold members; every member carries the
``applyset.kubernetes.io/part-of`` label with the set's id, plus ``tether.dev/app`` naming the app
so a conflict error can say who owns an object.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from tether.core.objects import ObjectRef

TOOLING = "tether/v1"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"
ID_LABEL = "applyset.kubernetes.io/id"
TOOLING_ANNOTATION = "applyset.kubernetes.io/tooling"
GROUP_KINDS_ANNOTATION = "applyset.kubernetes.io/contains-group-kinds"
NAMESPACES_ANNOTATION = "applyset.kubernetes.io/additional-namespaces"
APP_LABEL = "tether.dev/app"
PRUNE_ANNOTATION = "tether.dev/prune"
PARENT_KIND = "ConfigMap"
DEFAULT_INVENTORY_NAMESPACE = "tether-system"


def app_identity(name: str, namespace: str) -> str:
    """The one identity of an app, shared by ``tether sync --app NAME -n NAMESPACE`` and by the
    agent's App ``NAME`` in ``NAMESPACE``, so that either can take over from the other.

    It names the inventory and the audit records and is the value of ``tether.dev/app``.
    Namespaces never contain a dot, so the identity splits back at its first dot.
    """
    return f"{namespace}.{name}"


def applyset_id(name: str, namespace: str, kind: str = PARENT_KIND, group: str = "") -> str:
    """The ApplySet id of a parent object, as the convention defines it."""
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"


@dataclass
class Inventory:
    """What an ApplySet parent records: member group-kinds and the namespaces they live in."""

    app: str
    namespace: str = DEFAULT_INVENTORY_NAMESPACE
    group_kinds: set[str] = field(default_factory=set)
    namespaces: set[str] = field(default_factory=set)
    source: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return applyset_id(self.app, self.namespace)

    @classmethod
    def of(
        cls, app: str, refs: list[ObjectRef], namespace: str = DEFAULT_INVENTORY_NAMESPACE
    ) -> Inventory:
        return cls(
            app,
            namespace,
            {ref.group_kind for ref in refs},
            {ref.namespace for ref in refs if ref.namespace},
        )

    def union(self, other: Inventory) -> Inventory:
        return Inventory(
            self.app,
            self.namespace,
            self.group_kinds | other.group_kinds,
            self.namespaces | other.namespaces,
            self.source or other.source,
        )

    def parent(self) -> dict[str, object]:
        """The parent ConfigMap as a manifest to apply."""
        additional = sorted(self.namespaces - {self.namespace})
        return {
            "apiVersion": "v1",
            "kind": PARENT_KIND,
            "metadata": {
                "name": self.app,
                "namespace": self.namespace,
                "labels": {ID_LABEL: self.id, APP_LABEL: self.app},
                "annotations": {
                    TOOLING_ANNOTATION: TOOLING,
                    GROUP_KINDS_ANNOTATION: ",".join(sorted(self.group_kinds)),
                    NAMESPACES_ANNOTATION: ",".join(additional),
                },
            },
            "data": dict(self.source),
        }

    @classmethod
    def from_parent(cls, parent: dict[str, object]) -> Inventory:
        metadata = parent.get("metadata") or {}
        assert isinstance(metadata, dict)
        annotations = metadata.get("annotations") or {}
        namespace = str(metadata.get("namespace", DEFAULT_INVENTORY_NAMESPACE))
        kinds = {k for k in str(annotations.get(GROUP_KINDS_ANNOTATION, "")).split(",") if k}
        extra = {n for n in str(annotations.get(NAMESPACES_ANNOTATION, "")).split(",") if n}
        data = parent.get("data") or {}
        assert isinstance(data, dict)
        source = {str(k): str(v) for k, v in data.items()}
        return cls(str(metadata.get("name", "")), namespace, kinds, extra | {namespace}, source)

    def with_source(self, source: dict[str, str]) -> Inventory:
        return Inventory(self.app, self.namespace, self.group_kinds, self.namespaces, source)

    def member_labels(self) -> dict[str, str]:
        return {PART_OF_LABEL: self.id, APP_LABEL: self.app}


def split_group_kind(group_kind: str) -> tuple[str, str]:
    """``Deployment.apps`` → ``("apps", "Deployment")``; ``Service`` → ``("", "Service")``."""
    kind, _, group = group_kind.partition(".")
    return group, kind
