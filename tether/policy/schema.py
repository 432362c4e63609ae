"""Validating objects against Kubernetes OpenAPI v3 schemas, offline.

A ``SchemaSet`` holds the component schemas of a Kubernetes build (what ``/openapi/v3`` serves,
see ``tether.governance.schemas``) and an index from ``apiVersion`` + ``kind`` to the schema
of that kind. CustomResourceDefinitions found in the repository add their ``openAPIV3Schema``
for their custom resources.

The schemas are made as strict as the API server is with field validation ``Strict`` (what
``kubectl apply`` uses): an object schema with ``properties`` rejects fields it does not list,
unless it says ``x-kubernetes-preserve-unknown-fields``. ``x-kubernetes-int-or-string`` accepts
an integer or a string, and fields set to ``null`` are treated as unset (as the server does).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft4Validator

from tether.core import Manifest
from tether.policy.findings import field_path

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_REF_PREFIX = "#/components/schemas/"
MAX_PROBLEMS = 5


def kind_key(api_version: str, kind: str) -> str:
    return f"{api_version}|{kind}"


def index_kinds(definitions: dict[str, Any]) -> dict[str, str]:
    """``apiVersion|Kind`` → schema name, from each schema's ``x-kubernetes-group-version-kind``."""
    kinds: dict[str, str] = {}
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            group, version, kind = gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")
            if not kind or kind.endswith("List") or kind in ("WatchEvent", "DeleteOptions"):
                continue
            api_version = f"{group}/{version}" if group else version
            kinds.setdefault(kind_key(api_version, kind), name)
    return kinds


def strict(schema: Any) -> Any:
    """A copy of ``schema`` that refuses unknown fields and understands int-or-string."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items() if key != "description"}
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    if schema.get("x-kubernetes-embedded-resource") and "properties" in result:
        properties = result["properties"]
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        properties.setdefault("metadata", {"type": "object"})
    if "properties" in result and "additionalProperties" not in result and not preserve:
        result["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string") and "type" not in result:
        result.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if preserve and result.get("type") == "object" and "properties" not in result:
        result.pop("additionalProperties", None)
    return result


def without_nulls(value: Any) -> Any:
    """``value`` with every ``key: null`` dropped (the server treats them as unset)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


@dataclass
class SchemaSet:
    """Schemas of one Kubernetes version (``version``), plus those of CRDs given later."""

    version: str
    definitions: dict[str, Any]
    kinds: dict[str, str]
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)
    _validators: dict[str, Draft4Validator] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, version: str, definitions: dict[str, Any]) -> SchemaSet:
        strict_definitions = {name: strict(schema) for name, schema in definitions.items()}
        return cls(version, strict_definitions, index_kinds(definitions))

    def add_crds(self, manifests: Iterable[Manifest]) -> None:
        """Honour the CustomResourceDefinitions among ``manifests``."""
        for manifest in manifests:
            if not manifest.is_crd:
                continue
            spec = manifest.body.get("spec") or {}
            group = str(spec.get("group", ""))
            kind = str((spec.get("names") or {}).get("kind", ""))
            for version in spec.get("versions") or []:
                if not isinstance(version, dict):
                    continue
                schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or None
                api_version = f"{group}/{version.get('name', '')}"
                self.custom[kind_key(api_version, kind)] = self._crd_schema(schema)
                self._validators.pop(kind_key(api_version, kind), None)

    def _crd_schema(self, schema: dict[str, Any] | None) -> dict[str, Any]:
        if not isinstance(schema, dict):
            return {"type": "object"}
        root = copy.deepcopy(schema)
        properties = root.setdefault("properties", {})
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        meta = {"$ref": _REF_PREFIX + OBJECT_META} if OBJECT_META in self.definitions else {}
        if "metadata" in properties and meta:
            properties["metadata"] = {"allOf": [properties["metadata"], meta]}
        else:
            properties.setdefault("metadata", meta or {"type": "object"})
        root.setdefault("type", "object")
        return strict(root)  # type: ignore[no-any-return]

    def knows(self, api_version: str, kind: str) -> bool:
        key = kind_key(api_version, kind)
        return key in self.custom or key in self.kinds

    def validate(self, manifest: Manifest) -> list[tuple[str, str]] | None:
        """What is wrong with ``manifest``: ``(field, problem)`` pairs (at most ``MAX_PROBLEMS``,
        the last one counting the rest), or None when its kind has no schema here."""
        key = kind_key(manifest.api_version, manifest.kind)
        validator = self._validator(key)
        if validator is None:
            return None
        instance = without_nulls(manifest.body)
        errors = sorted(
            validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]
        )
        problems: list[tuple[str, str]] = []
        for error in errors:
            path = [p if isinstance(p, int) else str(p) for p in error.absolute_path]
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                known = (error.schema or {}).get("properties") or {}
                for name in sorted(str(k) for k in error.instance if k not in known):
                    problems.append((field_path([*path, name]), f"unknown field {name!r}"))
                continue
            problems.append((field_path(path), _message(error)))
        if len(problems) > MAX_PROBLEMS:
            rest = len(problems) - MAX_PROBLEMS + 1
            problems = [*problems[: MAX_PROBLEMS - 1], ("", f"and {rest} more problems")]
        return problems

    def _validator(self, key: str) -> Draft4Validator | None:
        if key in self._validators:
            return self._validators[key]
        root: dict[str, Any] = {"components": {"schemas": self.definitions}}
        if key in self.custom:
            schema = {**self.custom[key], **root}
        elif key in self.kinds:
            schema = {"$ref": _REF_PREFIX + self.kinds[key], **root}
        else:
            return None
        validator = Draft4Validator(schema)
        self._validators[key] = validator
        return validator


def _message(error: Any) -> str:
    message = str(error.message)
    if error.validator in ("oneOf", "anyOf"):
        return f"{error.instance!r} is not any of the accepted types"
    return message if len(message) <= 300 else message[:297] + "..."
