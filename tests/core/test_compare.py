"""Pure comparison rules: what counts as a difference, the no-op fast path, Secret masking."""

from __future__ import annotations

import copy

import pytest

from tether.core import ObjectRef
from tether.core.compare import (
    DIGEST_ANNOTATION,
    contains,
    digest,
    in_sync,
    mask_secrets,
    provably_unchanged,
    strip_server_fields,
    unified_diff,
)

LIVE = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "a",
        "namespace": "ns",
        "resourceVersion": "12",
        "uid": "u",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "managedFields": [{"manager": "tether", "operation": "Apply", "fieldsV1": {"f:data": {}}}],
    },
    "data": {"k": "v"},
}


def test_server_set_fields_are_not_differences() -> None:
    other = copy.deepcopy(LIVE)
    other["metadata"]["resourceVersion"] = "99"
    other["metadata"]["uid"] = "other"
    other["status"] = {"anything": True}
    assert strip_server_fields(other) == strip_server_fields(LIVE)
    assert in_sync(other, LIVE)


def test_a_changed_value_or_owned_field_set_is_a_difference() -> None:
    changed = copy.deepcopy(LIVE)
    changed["data"]["k"] = "w"
    assert not in_sync(changed, LIVE)
    reowned = copy.deepcopy(LIVE)
    reowned["metadata"]["managedFields"][0]["fieldsV1"] = {"f:data": {"f:k": {}}}
    assert not in_sync(reowned, LIVE)


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": [1, 2]}, {"a": [1, 2]}, True),
        ({"a": [1]}, {"a": [1, 2]}, False),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "defaulted": "yes"}]}, True),
        ({"a": None}, {"a": None}, False),
        ({"port": 80}, {"port": "80"}, False),
        ({"ok": True}, {"ok": 1}, False),
        ({"a": {"b": 1}}, {"a": "flat"}, False),
    ],
)
def test_contains(desired: object, live: object, expected: bool) -> None:
    assert contains(desired, live) is expected


def _sealed(body: dict) -> dict:
    body = copy.deepcopy(body)
    body["metadata"]["annotations"] = {DIGEST_ANNOTATION: digest(body)}
    return body


def test_fast_path_needs_same_digest_ownership_and_values() -> None:
    desired = _sealed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "ns"},
            "data": {"k": "v"},
        }
    )
    live = copy.deepcopy(LIVE)
    live["metadata"]["annotations"] = dict(desired["metadata"]["annotations"])
    assert provably_unchanged(desired, live)

    drifted = copy.deepcopy(live)
    drifted["data"]["k"] = "hand-edited"
    assert not provably_unchanged(desired, drifted)

    no_owner = copy.deepcopy(live)
    no_owner["metadata"]["managedFields"] = []
    assert not provably_unchanged(desired, no_owner)

    new_commit = _sealed({**desired, "data": {"k": "v", "extra": "x"}})
    assert not provably_unchanged(new_commit, live)


def test_secret_values_are_masked_but_changes_still_visible() -> None:
    before = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": "b2xk", "same": "eA=="},
    }
    after = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": "bmV3", "same": "eA=="},
    }
    masked_before, masked_after = mask_secrets(before, after)
    assert masked_before["data"] == {"a": "*** (masked)", "same": "*** (masked)"}
    assert masked_after["data"] == {"a": "*** (masked, changed)", "same": "*** (masked)"}
    assert before["data"]["a"] == "b2xk"  # inputs untouched
    text = unified_diff(ObjectRef("", "Secret", "", "s"), before, after)
    assert "b2xk" not in text and "bmV3" not in text and "masked, changed" in text


def test_last_applied_annotation_of_a_secret_is_masked() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"password":"hunter2"}}'
            },
        },
    }
    text = unified_diff(ObjectRef("", "Secret", "", "s"), live, None)
    assert "hunter2" not in text


def test_diff_of_equal_objects_is_empty() -> None:
    assert unified_diff(ObjectRef("", "ConfigMap", "ns", "a"), LIVE, copy.deepcopy(LIVE)) == ""


def test_drift_is_judged_on_what_the_server_stored() -> None:
    from tether.core.compare import drift_baseline, drifted_fields

    desired = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "resources": {"limits": {"cpu": "1000m"}},
                            "env": [],
                            "volumeMounts": [{"name": "v", "readOnly": False}],
                        }
                    ]
                }
            }
        },
    }
    stored = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "uid": "1"},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "resources": {"limits": {"cpu": "1"}},
                            "volumeMounts": [{"name": "v"}],
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ]
                }
            },
        },
    }
    baseline = drift_baseline(desired, stored)
    assert drifted_fields(desired, stored)  # the manifest's spelling would look drifted
    assert drifted_fields(baseline, stored) == []
    edited = copy.deepcopy(stored)
    edited["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "2"
    assert drifted_fields(baseline, edited) == [
        "spec.template.spec.containers[0].resources.limits.cpu"
    ]


def test_a_secrets_string_data_is_judged_through_its_data() -> None:
    from tether.core.compare import drift_baseline, drifted_fields

    desired = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"k": "v"},
    }
    stored = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"k": "dg=="},
    }
    baseline = drift_baseline(desired, stored)
    assert drifted_fields(baseline, stored) == []
    assert drifted_fields(baseline, {**stored, "data": {"k": "aGFja2Vk"}}) == ["data.k"]
    assert drift_baseline(desired, None) is desired
