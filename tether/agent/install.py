"""What ``tether install --export`` prints: CRDs, the namespace, the agent's ServiceAccount and
RBAC, the platform's identity, and the agent Deployment.

The agent applies nothing as itself (docs/tenancy.md, docs/decisions/0012): it reads its CRDs,
writes their status, finalizers and Events, holds its Lease and the inventories in its own
namespace, reads Secrets only there (and wherever an operator binds ``tether-agent-secrets``),
and impersonates only ServiceAccounts of the names the install lists. Apps are applied as those
ServiceAccounts, whose RBAC the platform grants per team."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.agent import crds
from tether.agent.secretdata import SECRETS_ROLE
from tether.agent.settings import DEFAULT_SERVICE_ACCOUNT

IMAGE = "ghcr.io/tether-dev/tether:0.1.0"
NAMESPACE = "tether-system"
AGENT = "tether-agent"
# SECRETS_ROLE reads Secrets in the namespaces an operator binds it in (a RoleBinding per team
# namespace whose GitSources, Apps or AlertProviders name Secrets); bound nowhere by the install.
# The platform's own identity: the root App of `tether bootstrap` is applied as it, through the
# Project PLATFORM_PROJECT in the agent's namespace. Only Apps there can name it.
PLATFORM_ACCOUNT = "tether-platform"
PLATFORM_PROJECT = "platform"
LABELS = {"app.kubernetes.io/name": "tether-agent", "app.kubernetes.io/part-of": "tether"}
_RBAC = "rbac.authorization.k8s.io/v1"


def _role(kind: str, name: str, namespace: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": LABELS}
    if kind == "Role":
        metadata["namespace"] = namespace
    return {"apiVersion": _RBAC, "kind": kind, "metadata": metadata, "rules": rules}


def _binding(
    kind: str, name: str, namespace: str, role: str = "", account: str = AGENT
) -> dict[str, Any]:
    """A (Cluster)RoleBinding of ServiceAccount ``namespace/account`` to the role ``role``
    (default: ``name``, of the matching kind)."""
    metadata: dict[str, Any] = {"name": name, "labels": LABELS}
    if kind == "RoleBinding":
        metadata["namespace"] = namespace
    return {
        "apiVersion": _RBAC,
        "kind": kind,
        "metadata": metadata,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole" if kind == "ClusterRoleBinding" else "Role",
            "name": role or name,
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    }


def controller_rules(namespace: str, deployers: Sequence[str]) -> list[dict[str, Any]]:
    """What the agent may do in every namespace."""
    return [
        {
            "apiGroups": [crds.GROUP],
            "resources": [
                "gitsources",
                "helmsources",
                "ocisources",
                "apps",
                "alertproviders",
                "projects",
            ],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": [crds.GROUP],
            "resources": [
                "gitsources/status",
                "helmsources/status",
                "ocisources/status",
                "apps/status",
            ],
            "verbs": ["get", "patch", "update"],
        },
        # the finalizer on Apps, and a standby's "fetch now" annotation on GitSources
        {
            "apiGroups": [crds.GROUP],
            "resources": ["apps", "apps/finalizers", "gitsources"],
            "verbs": ["update", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        # Apps are applied as these ServiceAccounts, in their own namespace; the agent reads
        # them only to say clearly that one is missing.
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["impersonate", "get"],
            "resourceNames": list(deployers),
        },
        # the inventory namespace exists (the inventories are ConfigMaps there)
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "verbs": ["get"],
            "resourceNames": [namespace],
        },
    ]


def own_namespace_rules() -> list[dict[str, Any]]:
    """What the agent may do in its own namespace: its Lease, the apps' inventories and the
    cluster-wide health checks (ConfigMaps), the Secrets it reads (keys, credentials), and
    impersonating the platform's identity."""
    return [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["get", "list", "create", "update", "patch", "delete"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["impersonate", "get"],
            "resourceNames": [PLATFORM_ACCOUNT],
        },
    ]


def manifests(
    namespace: str = NAMESPACE,
    image: str = IMAGE,
    deployers: Sequence[str] = (DEFAULT_SERVICE_ACCOUNT,),
) -> list[dict[str, Any]]:
    """Every object of the install. ``deployers``: the ServiceAccount names the agent may
    impersonate in any namespace (the first is the default one of Apps without a Project)."""
    return [
        *crds.ALL,
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": LABELS},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": AGENT, "namespace": namespace, "labels": LABELS},
        },
        _role("ClusterRole", AGENT, namespace, controller_rules(namespace, deployers)),
        _binding("ClusterRoleBinding", AGENT, namespace),
        _role("Role", AGENT, namespace, own_namespace_rules()),
        _binding("RoleBinding", AGENT, namespace),
        _role(
            "ClusterRole",
            SECRETS_ROLE,
            namespace,
            [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        ),
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": PLATFORM_ACCOUNT, "namespace": namespace, "labels": LABELS},
        },
        _binding(
            "ClusterRoleBinding",
            PLATFORM_ACCOUNT,
            namespace,
            role="cluster-admin",
            account=PLATFORM_ACCOUNT,
        ),
        _deployment(namespace, image, deployers[0]),
    ]


def _deployment(namespace: str, image: str, default_account: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "tether-agent", "namespace": namespace, "labels": LABELS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "tether-agent"}},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "serviceAccountName": "tether-agent",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "agent",
                            "image": image,
                            "args": [
                                "agent",
                                f"--lease-namespace={namespace}",
                                "--listen=0.0.0.0:9440",
                                "--identity=$(POD_NAME)",
                                f"--default-service-account={default_account}",
                            ],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {"name": "TETHER_CACHE_DIR", "value": "/cache"},
                                {"name": "TETHER_STATE_DIR", "value": "/cache/state"},
                            ],
                            "ports": [{"name": "http", "containerPort": 9440}],
                            "livenessProbe": probe,
                            "readinessProbe": {
                                **probe,
                                "httpGet": {"path": "/readyz", "port": "http"},
                            },
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "cache", "mountPath": "/cache"},
                                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not a shared /tmp,
                            ],
                        }
                    ],
                    "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def root_objects(namespace: str, url: str, path: str, ref: str | None) -> list[dict[str, Any]]:
    """The GitSource, Project and root App that make the agent manage itself from Git
    (bootstrap). The root App is applied as the platform's identity, through its Project."""
    source: dict[str, Any] = {"url": url, "interval": "1m"}
    if ref:
        source["ref"] = {"branch": ref}
    return [
        {
            "apiVersion": crds.API_VERSION,
            "kind": "GitSource",
            "metadata": {"name": "platform", "namespace": namespace},
            "spec": source,
        },
        {
            "apiVersion": crds.API_VERSION,
            "kind": "Project",
            "metadata": {"name": PLATFORM_PROJECT, "namespace": namespace},
            "spec": {
                "destinations": ["*"],
                "clusterScoped": True,
                "serviceAccountName": PLATFORM_ACCOUNT,
            },
        },
        {
            "apiVersion": crds.API_VERSION,
            "kind": "App",
            "metadata": {"name": "root", "namespace": namespace},
            "spec": {
                "project": PLATFORM_PROJECT,
                "sourceRef": {"name": "platform"},
                "path": path,
                "destination": {"namespace": namespace},
                "syncPolicy": {"automated": True, "prune": True, "selfHeal": True},
            },
        },
    ]
