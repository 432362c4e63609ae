"""The ApplySet vocabulary: ids, parent round trip, group-kind spelling."""

from __future__ import annotations

from tether.core import ObjectRef
from tether.core.inventory import GROUP_KINDS_ANNOTATION, Inventory, applyset_id, split_group_kind


def test_applyset_id_is_stable_label_safe_and_depends_on_the_parent() -> None:
    first = applyset_id("web", "tether-system")
    assert first == applyset_id("web", "tether-system")
    assert first != applyset_id("web", "other")
    assert first.startswith("applyset-") and first.endswith("-v1")
    assert len(first) <= 63 and "=" not in first and "+" not in first and "/" not in first


def test_parent_round_trip() -> None:
    refs = [
        ObjectRef("apps", "Deployment", "a", "d"),
        ObjectRef("", "ConfigMap", "b", "c"),
        ObjectRef("", "Namespace", "", "a"),
    ]
    inventory = Inventory.of("web", refs).with_source({"url": "file:///x", "revision": "abc"})
    parent = inventory.parent()
    assert (
        parent["metadata"]["annotations"][GROUP_KINDS_ANNOTATION]
        == "ConfigMap,Deployment.apps,Namespace"
    )
    back = Inventory.from_parent(parent)
    assert back.group_kinds == inventory.group_kinds
    assert back.namespaces == {"a", "b", "tether-system"}
    assert back.source == {"url": "file:///x", "revision": "abc"}
    assert back.id == inventory.id


def test_union_keeps_everything_both_sides_track() -> None:
    old = Inventory("web", group_kinds={"ConfigMap"}, namespaces={"a"})
    new = Inventory("web", group_kinds={"Service"}, namespaces={"b"})
    both = old.union(new)
    assert both.group_kinds == {"ConfigMap", "Service"} and both.namespaces == {"a", "b"}


def test_split_group_kind() -> None:
    assert split_group_kind("Deployment.apps") == ("apps", "Deployment")
    assert split_group_kind("Widget.g.example.com") == ("g.example.com", "Widget")
    assert split_group_kind("Service") == ("", "Service")
