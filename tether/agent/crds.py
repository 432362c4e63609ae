"""The agent's API, ``tether.dev/v1alpha1``: GitSource, HelmSource, OCISource, App,
AlertProvider and Project, as
CustomResourceDefinitions with OpenAPI validation so the API server refuses bad input (an
interval like ``5 minutes``, an unknown ref kind) before the agent ever sees it."""

from __future__ import annotations

from typing import Any

GROUP = "tether.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

_DURATION = {"type": "string", "pattern": DURATION_PATTERN}
# A duration that may also be a bare number of seconds (Argo Rollouts' ``pause: {duration: 10}``)
# (the pattern checks a string, the minimum a number)
_SECONDS_OR_DURATION = {
    "x-kubernetes-int-or-string": True,
    "pattern": DURATION_PATTERN,
    "minimum": 0,
}
_NAME = {
    "type": "string",
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    "maxLength": 253,
}
_SECRET_REF = {"type": "object", "required": ["name"], "properties": {"name": _NAME}}
_CONDITIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    },
}


def _condition_column(condition: str, field: str = "status") -> dict[str, str]:
    """A ``kubectl get`` column showing one field of one condition, named after the condition."""
    return {
        "name": condition,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{condition}")].{field}',
    }


# An App's own health checks (docs/health.md): CEL expressions per kind, compiled by the agent
# before a sync (a schema cannot check CEL), and the grace period for kinds not yet observed.
_HEALTH_EXPRESSION = {"type": "string", "minLength": 1, "maxLength": 4096}
_HEALTH = {
    "type": "object",
    "properties": {
        "gracePeriod": {**_DURATION, "default": "30s"},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "group": {"type": "string"},
                    "kind": {"type": "string", "minLength": 1},
                    "degraded": _HEALTH_EXPRESSION,
                    "progressing": _HEALTH_EXPRESSION,
                    "healthy": _HEALTH_EXPRESSION,
                    "message": _HEALTH_EXPRESSION,
                },
            },
        },
    },
}


# GitSource.spec.forge: where the revert pull requests and commit statuses of its Apps go
_FORGE = {
    "type": "object",
    "required": ["kind"],
    "properties": {
        "kind": {"type": "string", "enum": ["gitea", "github", "gitlab"]},
        "url": {"type": "string", "description": "API base; default: from the source's URL"},
        "repository": {"type": "string", "description": "owner/name; default: from the URL"},
        "secretRef": _SECRET_REF,
    },
}

# App.status.quarantine: renders auto-sync skips until the head renders something else
_QUARANTINE = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "revision": {"type": "string"},
            "renderDigest": {"type": "string"},
            "reason": {"type": "string"},
            "since": {"type": "string"},
            "by": {"type": "string"},
            "stableRevision": {"type": "string"},
            "evidence": {"type": "string"},
            "pullRequest": {
                "type": "object",
                "nullable": True,
                "properties": {"url": {"type": "string"}, "number": {"type": "integer"}},
            },
            "pullRequestPending": {"type": "boolean"},
            "commitStatusSet": {"type": "boolean"},
        },
    },
}

# Progressive delivery (docs/delivery.md, decision 0019): one entry per Deployment.
_ANALYSIS = {
    "type": "object",
    "required": ["templates"],
    "properties": {
        "templates": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["templateName"],
                "properties": {"templateName": _NAME},
            },
        },
        "args": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": "string"},
                    # Argo Rollouts' hash of the stable's or the candidate's pods, or a field
                    # of the target Deployment's metadata (tether.delivery.model checks which)
                    "valueFrom": {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 1,
                        "properties": {
                            "podTemplateHashValue": {
                                "type": "string",
                                "enum": ["Stable", "Latest"],
                            },
                            "fieldRef": {
                                "type": "object",
                                "required": ["fieldPath"],
                                "properties": {"fieldPath": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
}
_STEP = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "setWeight": {"type": "integer", "minimum": 0, "maximum": 100},
        "pause": {"type": "object", "properties": {"duration": _SECONDS_OR_DURATION}},
        "analysis": _ANALYSIS,
        "webhook": {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "pattern": "^https?://"},
                "timeout": _DURATION,
            },
        },
    },
}
_DELIVERY = {
    "type": "array",
    "description": "Progressive delivery of the App's Deployments (docs/delivery.md).",
    "items": {
        "type": "object",
        "required": ["target"],
        "properties": {
            "target": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "kind": {"type": "string", "enum": ["Deployment"], "default": "Deployment"},
                    "name": _NAME,
                },
            },
            "onFailure": {"type": "string", "enum": ["rollback", "freeze"], "default": "rollback"},
            "progressDeadline": _DURATION,
            "canary": {
                "type": "object",
                "required": ["steps"],
                "properties": {
                    "steps": {"type": "array", "items": _STEP},
                    "trafficRouting": {
                        "type": "object",
                        "properties": {
                            "gatewayAPI": {
                                "type": "object",
                                "required": ["httpRoute", "stableService", "canaryService"],
                                "properties": {
                                    "httpRoute": _NAME,
                                    "stableService": _NAME,
                                    "canaryService": _NAME,
                                },
                            }
                        },
                    },
                },
            },
            "blueGreen": {
                "type": "object",
                "required": ["activeService", "previewService"],
                "properties": {
                    "activeService": _NAME,
                    "previewService": _NAME,
                    "prePromotionAnalysis": _ANALYSIS,
                    "postPromotionAnalysis": _ANALYSIS,
                    "autoPromotionEnabled": {"type": "boolean", "default": True},
                    "scaleDownDelay": _DURATION,
                },
            },
        },
    },
}


def _crd(
    kind: str,
    plural: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    columns: list[dict[str, Any]],
    short: list[str],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "tether"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
                "shortNames": short,
                "categories": ["tether"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                    **status,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


# What the source kinds share: the artifact they resolved, in status and in `kubectl get`; and
# for the registries (HelmSource, OCISource) a login Secret and digest lists.
_ARTIFACT_STATUS = {
    "properties": {
        "conditions": _CONDITIONS,
        "artifact": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }
}
_ARTIFACT_COLUMNS = [
    {"name": "URL", "type": "string", "jsonPath": ".spec.url"},
    {"name": "Revision", "type": "string", "jsonPath": ".status.artifact.revision"},
    _condition_column("Ready"),
]
_LOGIN_SECRET_REF = {
    **_SECRET_REF,
    "description": "Keys username and password (basic auth), or token (bearer).",
}
_DIGESTS = {"type": "array", "items": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}}

GIT_SOURCE = _crd(
    "GitSource",
    "gitsources",
    {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "minLength": 1},
            "ref": {
                "type": "object",
                "maxProperties": 1,
                "properties": {
                    "branch": {"type": "string"},
                    "tag": {"type": "string"},
                    "semver": {"type": "string"},
                    "commit": {"type": "string", "pattern": "^[0-9a-f]{7,64}$"},
                },
            },
            "interval": {**_DURATION, "default": "1m"},
            "secretRef": _SECRET_REF,
            # Removed (decision 0013): the agent refuses a GitSource that sets it, with a Ready
            # condition saying to use secretRef; kept in the schema so that it is not pruned
            # unseen from GitSources written before.
            "tokenFile": {
                "type": "string",
                "description": "Removed: not read by the agent. Put the token in a Secret "
                "in this namespace and name it in secretRef.",
            },
            "verify": {
                "type": "object",
                "required": ["secretRef"],
                "properties": {"secretRef": _SECRET_REF},
            },
            "suspend": {"type": "boolean"},
            "forge": _FORGE,
        },
    },
    _ARTIFACT_STATUS,
    _ARTIFACT_COLUMNS,
    ["gs"],
)

# A Helm repository (``https://`` with index.yaml, or an ``oci://`` registry) and how to reach
# it; an App on it names the chart and version range (decision 0023).
_CERT_SECRET_REF = {
    **_SECRET_REF,
    "description": "A Secret in this namespace whose key ca.crt holds the CA bundle (PEM).",
}
_INSECURE = {
    "type": "boolean",
    "description": "An oci:// registry served over plain http (credentials then only to a "
    "loopback address, with the agent's --allow-loopback-http-credentials).",
}
HELM_SOURCE = _crd(
    "HelmSource",
    "helmsources",
    {
        "type": "object",
        "required": ["url"],
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.allowedDigests) || self.url.startsWith('oci://')",
                "message": "allowedDigests names OCI manifest digests: it applies to an oci:// "
                "registry only (a Helm repository's packages are checked against its index)",
            }
        ],
        "properties": {
            "url": {"type": "string", "pattern": r"^(https?|oci)://[^\s]+$", "maxLength": 2048},
            "interval": {**_DURATION, "default": "5m"},
            "secretRef": _LOGIN_SECRET_REF,
            "certSecretRef": _CERT_SECRET_REF,
            "insecure": _INSECURE,
            "allowedDigests": {
                **_DIGESTS,
                "description": "oci:// only: the chart manifest digests accepted (any other "
                "version is refused and nothing is applied).",
            },
            "suspend": {"type": "boolean"},
        },
    },
    _ARTIFACT_STATUS,
    _ARTIFACT_COLUMNS,
    ["hs"],
)

# One OCI artifact of plain manifests (``oci://host/repo``) at a tag, digest or semver range.
OCI_SOURCE = _crd(
    "OCISource",
    "ocisources",
    {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "pattern": r"^oci://[^\s]+$", "maxLength": 2048},
            "ref": {
                "type": "object",
                "maxProperties": 1,
                "properties": {
                    "tag": {"type": "string", "minLength": 1},
                    "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
                    "semver": {"type": "string", "minLength": 1},
                },
            },
            "interval": {**_DURATION, "default": "5m"},
            "secretRef": _LOGIN_SECRET_REF,
            "certSecretRef": _CERT_SECRET_REF,
            "insecure": _INSECURE,
            "allowedDigests": _DIGESTS,
            "suspend": {"type": "boolean"},
        },
    },
    _ARTIFACT_STATUS,
    _ARTIFACT_COLUMNS,
    ["ocis"],
)

SOURCE_KINDS = ("GitSource", "HelmSource", "OCISource")
# spec.sourceRef.kind, and what an App on each kind must say (checked by the API server).
_SOURCE_REF = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _NAME,
        "kind": {"type": "string", "enum": list(SOURCE_KINDS), "default": "GitSource"},
    },
}
_SOURCE_RULES = [
    {
        "rule": "(has(self.sourceRef.kind) && self.sourceRef.kind != 'GitSource') || has(self.path)",
        "message": "spec.path is required: the directory (or chart) in the GitSource",
    },
    {
        "rule": "!has(self.sourceRef.kind) || self.sourceRef.kind != 'HelmSource' || "
        "(has(self.chart) && has(self.chart.name))",
        "message": "an App on a HelmSource names its chart in spec.chart.name",
    },
    {
        "rule": "!has(self.chart) || !has(self.chart.valuesSourceRef) || "
        "(has(self.sourceRef.kind) && self.sourceRef.kind == 'HelmSource')",
        "message": "spec.chart.valuesSourceRef is for an App on a HelmSource; on a GitSource the "
        "values files are in that GitSource",
    },
]
# spec.chart's fields for a chart of a HelmSource: which chart, which versions, where the values
# files are (decision 0023).
_REPOSITORY_CHART = {
    "name": {"type": "string", "minLength": 1, "maxLength": 253},
    "version": {"type": "string", "minLength": 1},
    "valuesSourceRef": {"type": "object", "required": ["name"], "properties": {"name": _NAME}},
}
_VALUES_FROM = {
    "type": "array",
    "description": "ConfigMaps and Secrets of the App's namespace holding values, read as the "
    "App's identity, merged in order after valuesFiles and before values (docs/helm.md).",
    "items": {
        "type": "object",
        "required": ["kind", "name"],
        "properties": {
            "kind": {"type": "string", "enum": ["ConfigMap", "Secret"]},
            "name": _NAME,
            "valuesKey": {
                "type": "string",
                "pattern": r"^[-._a-zA-Z0-9]+$",
                "maxLength": 253,
                "default": "values.yaml",
            },
            "targetPath": {"type": "string", "maxLength": 250},
            "optional": {"type": "boolean", "default": False},
        },
    },
}

APP = _crd(
    "App",
    "apps",
    {
        "type": "object",
        "required": ["sourceRef"],
        "x-kubernetes-validations": _SOURCE_RULES,
        "properties": {
            "sourceRef": _SOURCE_REF,
            "path": {"type": "string", "minLength": 1},
            "chart": {
                "type": "object",
                "description": "Render a Helm chart: spec.path in the GitSource, or spec.chart.name "
                "of the HelmSource (docs/helm.md).",
                "properties": {
                    **_REPOSITORY_CHART,
                    "valuesFiles": {"type": "array", "items": {"type": "string", "minLength": 1}},
                    "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "releaseName": {"type": "string", "maxLength": 53},
                    "postRenderPatches": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                    },
                    "valuesFrom": _VALUES_FROM,
                },
            },
            "destination": {"type": "object", "properties": {"namespace": _NAME}},
            "suspend": {"type": "boolean"},
            "project": _NAME,
            "decryption": {"type": "object", "properties": {"secretRef": _SECRET_REF}},
            "healthTimeout": {**_DURATION, "default": "5m"},
            "health": _HEALTH,
            "delivery": _DELIVERY,
            "dependsOn": {
                "type": "array",
                "items": {"type": "object", "required": ["name"], "properties": {"name": _NAME}},
            },
            "syncPolicy": {
                "type": "object",
                "properties": {
                    "automated": {"type": "boolean", "default": True},
                    "prune": {"type": "boolean", "default": False},
                    "selfHeal": {"type": "boolean", "default": True},
                    "interval": {**_DURATION, "default": "5m"},
                    "retry": {
                        "type": "object",
                        "properties": {
                            "limit": {"type": "integer", "minimum": 0},
                            "backoff": {
                                "type": "object",
                                "properties": {
                                    "duration": _DURATION,
                                    "factor": {"type": "integer", "minimum": 1},
                                    "maxDuration": _DURATION,
                                },
                            },
                        },
                    },
                },
            },
            "ignoreDifferences": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {
                        "group": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "namespace": {"type": "string"},
                        "jsonPointers": {
                            "type": "array",
                            "items": {"type": "string", "pattern": "^/"},
                        },
                        "managedFieldsManagers": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    {
        "properties": {
            "conditions": _CONDITIONS,
            "quarantine": _QUARANTINE,
            "lastAppliedRender": {
                "type": "object",
                "properties": {"revision": {"type": "string"}, "renderDigest": {"type": "string"}},
            },
            # a rollback a failed canary asked for, until it has run (tether.agent.delivery)
            "pendingRollback": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string"},
                    "evidence": {"type": "string"},
                    "actor": {"type": "string"},
                    "revision": {"type": "string"},
                },
            },
            "lastRollbackRequest": {
                "type": "object",
                "properties": {
                    "request": {"type": "string"},
                    "result": {"type": "string", "enum": ["RolledBack", "Failed"]},
                    "message": {"type": "string"},
                },
            },
        }
    },
    [
        _condition_column("Ready"),
        {"name": "Health", "type": "string", "jsonPath": ".status.health"},
        {"name": "Revision", "type": "string", "jsonPath": ".status.lastAppliedRevision"},
        _condition_column("Rollout", "reason"),
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
    ["tapp"],
)

ALERT_PROVIDER = _crd(
    "AlertProvider",
    "alertproviders",
    {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["webhook", "slack", "alertmanager"]},
            "url": {"type": "string"},
            "secretRef": _SECRET_REF,
            "events": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": [
                        "SyncSucceeded",
                        "SyncFailed",
                        "DriftDetected",
                        "DriftCorrected",
                        "HealthDegraded",
                        "SourceUnreachable",
                        "RolloutAborted",
                        "RolloutFrozen",
                        "RolloutInconclusive",
                        "RolloutPromoted",
                    ],
                },
            },
        },
    },
    {},
    [{"name": "Type", "type": "string", "jsonPath": ".spec.type"}],
    [],
)

PROJECT = _crd(
    "Project",
    "projects",
    {
        "type": "object",
        "properties": {
            "sourcePaths": {"type": "array", "items": {"type": "string"}},
            "destinations": {"type": "array", "items": {"type": "string"}},
            "kinds": {
                "type": "object",
                "properties": {
                    "allow": {"type": "array", "items": {"type": "string"}},
                    "deny": {"type": "array", "items": {"type": "string"}},
                },
            },
            "clusterScoped": {"type": "boolean", "default": False},
            "serviceAccountName": _NAME,
        },
    },
    {},
    [{"name": "ServiceAccount", "type": "string", "jsonPath": ".spec.serviceAccountName"}],
    ["proj"],
)

ALL = (GIT_SOURCE, HELM_SOURCE, OCI_SOURCE, APP, ALERT_PROVIDER, PROJECT)
