"""A small schema set written for these tests, in the shape ``/openapi/v3`` serves (component
schemas referring to each other with ``allOf: [$ref]`` and naming their kind in
``x-kubernetes-group-version-kind``). It covers only what the fixture repositories use; the real
schemas come from the dev cluster (see ``test_cluster.py``)."""

from __future__ import annotations

from typing import Any

VERSION = "v0.0.0-test"
META = "io.test.meta.ObjectMeta"


def ref(name: str) -> dict[str, Any]:
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}]}


def kind(group: str, version: str, name: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": ref(META),
            **properties,
        },
        "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": name}],
    }


STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
INT_OR_STRING = {"x-kubernetes-int-or-string": True}

DEFINITIONS: dict[str, Any] = {
    META: {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "labels": STRING_MAP,
            "annotations": STRING_MAP,
        },
    },
    "io.test.core.Namespace": kind("", "v1", "Namespace"),
    "io.test.core.ConfigMap": kind("", "v1", "ConfigMap", data=STRING_MAP),
    "io.test.core.Secret": kind(
        "", "v1", "Secret", data=STRING_MAP, stringData=STRING_MAP, type={"type": "string"}
    ),
    "io.test.core.ServicePort": {
        "type": "object",
        "required": ["port"],
        "properties": {
            "name": {"type": "string"},
            "port": {"type": "integer"},
            "targetPort": INT_OR_STRING,
            "protocol": {"type": "string", "enum": ["TCP", "UDP", "SCTP"]},
        },
    },
    "io.test.core.Service": kind(
        "",
        "v1",
        "Service",
        spec={
            "type": "object",
            "properties": {
                "selector": STRING_MAP,
                "ports": {"type": "array", "items": ref("io.test.core.ServicePort")},
                "type": {"type": "string"},
            },
        },
    ),
    "io.test.core.Container": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "image": {"type": "string"},
            "args": {"type": "array", "items": {"type": "string"}},
            "env": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                },
            },
            "ports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "containerPort": {"type": "integer"},
                    },
                },
            },
            "resources": {
                "type": "object",
                "properties": {
                    "requests": {"type": "object", "additionalProperties": INT_OR_STRING},
                    "limits": {"type": "object", "additionalProperties": INT_OR_STRING},
                },
            },
        },
    },
    "io.test.apps.Deployment": kind(
        "apps",
        "v1",
        "Deployment",
        spec={
            "type": "object",
            "required": ["selector", "template"],
            "properties": {
                "replicas": {"type": "integer"},
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": STRING_MAP},
                },
                "template": {
                    "type": "object",
                    "properties": {
                        "metadata": ref(META),
                        "spec": {
                            "type": "object",
                            "properties": {
                                "containers": {
                                    "type": "array",
                                    "items": ref("io.test.core.Container"),
                                }
                            },
                        },
                    },
                },
            },
        },
    ),
    "io.test.apiextensions.CustomResourceDefinition": kind(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        spec={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    ),
}
