"""What ``tether install --export`` prints: CRDs, the namespace, a ServiceAccount, RBAC and the
agent Deployment. RBAC is split so the broad "apply anything Git says" permission is one
ClusterRole an operator can narrow (or replace with impersonation) without touching the rest."""

from __future__ import annotations

from typing import Any

from tether.agent import crds

IMAGE = "ghcr.io/tether-dev/tether:0.1.0"
NAMESPACE = "tether-system"
LABELS = {"app.kubernetes.io/name": "tether-agent", "app.kubernetes.io/part-of": "tether"}


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": LABELS},
        "rules": rules,
    }


def _binding(kind: str, name: str, namespace: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": LABELS}
    if kind == "RoleBinding":
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole" if kind == "ClusterRoleBinding" else "Role",
            "name": name,
        },
        "subjects": [{"kind": "ServiceAccount", "name": "tether-agent", "namespace": namespace}],
    }


def manifests(namespace: str = NAMESPACE, image: str = IMAGE) -> list[dict[str, Any]]:
    controller_rules = [
        {
            "apiGroups": [crds.GROUP],
            "resources": ["gitsources", "apps", "alertproviders", "projects"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": [crds.GROUP],
            "resources": ["gitsources/status", "apps/status"],
            "verbs": ["get", "patch", "update"],
        },
        # the finalizer on Apps, and a standby's "fetch now" annotation on GitSources
        {
            "apiGroups": [crds.GROUP],
            "resources": ["apps", "apps/finalizers", "gitsources"],
            "verbs": ["update", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    ]
    lease_rules = [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    apply_rules = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
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
            "metadata": {"name": "tether-agent", "namespace": namespace, "labels": LABELS},
        },
        _cluster_role("tether-agent", controller_rules),
        _binding("ClusterRoleBinding", "tether-agent", namespace),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tether-agent-leader", "namespace": namespace, "labels": LABELS},
            "rules": lease_rules,
        },
        _binding("RoleBinding", "tether-agent-leader", namespace),
        _cluster_role("tether-agent-apply", apply_rules),
        _binding("ClusterRoleBinding", "tether-agent-apply", namespace),
        _deployment(namespace, image),
    ]


def _deployment(namespace: str, image: str) -> dict[str, Any]:
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
    """The GitSource and root App that make the agent manage itself from Git (bootstrap)."""
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
            "kind": "App",
            "metadata": {"name": "root", "namespace": namespace},
            "spec": {
                "sourceRef": {"name": "platform"},
                "path": path,
                "destination": {"namespace": namespace},
                "syncPolicy": {"automated": True, "prune": True, "selfHeal": True},
            },
        },
    ]
