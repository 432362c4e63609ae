"""The one place where the versions of the local control plane's components are pinned.

Every binary Tether's dev cluster runs is built from its Go module at exactly these versions
(see ``provision.py``). Bumping a version here makes the next ``tether dev-cluster up`` build the
new binaries into a fresh cache directory; the old ones stay until removed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

KUBERNETES = "v1.33.13"
ETCD = "v3.5.35"
KWOK = "v0.7.0"
KUSTOMIZE = "v5.7.1"
SOPS = "v3.13.3"
# The forge the delivery tests open pull requests in (not part of the control plane itself).
GITEA = "v1.26.0"
HELM = "v3.21.4"
# The OCI registry the OCI source tests push to and pull from (CNCF distribution).
DISTRIBUTION = "v3.1.2"
# Gateway API's standard-channel CRDs (HTTPRoute, ...), for the delivery tests' traffic routing:
# not a binary, the CRD manifests of the Go module's config/crd/standard, cached as one file.
GATEWAY_API = "v1.6.3"
# The resource metrics API (metrics.k8s.io) for HorizontalPodAutoscalers, opt-in per dev cluster
# (tether.devcluster.metrics); kwok simulates the kubelet endpoint it scrapes.
METRICS_SERVER = "v0.8.0"


@dataclass(frozen=True)
class Component:
    """One cached build: a name for its cache directory and the files it provides (binaries,
    or for Gateway API one manifest)."""

    name: str
    version: str
    binaries: tuple[str, ...]

    @property
    def cache_dir_name(self) -> str:
        return f"{self.name}-{self.version}"


KUBERNETES_COMPONENT = Component(
    "kubernetes",
    KUBERNETES,
    ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"),
)
ETCD_COMPONENT = Component("etcd", ETCD, ("etcd",))
KWOK_COMPONENT = Component("kwok", KWOK, ("kwok",))
KUSTOMIZE_COMPONENT = Component("kustomize", KUSTOMIZE, ("kustomize",))
SOPS_COMPONENT = Component("sops", SOPS, ("sops",))
GITEA_COMPONENT = Component("gitea", GITEA, ("gitea",))
HELM_COMPONENT = Component("helm", HELM, ("helm",))
REGISTRY_COMPONENT = Component("registry", DISTRIBUTION, ("registry",))
GATEWAY_API_CRDS = "gateway-api-standard-crds.yaml"
GATEWAY_API_COMPONENT = Component("gateway-api", GATEWAY_API, (GATEWAY_API_CRDS,))
METRICS_SERVER_COMPONENT = Component("metrics-server", METRICS_SERVER, ("metrics-server",))

ALL_COMPONENTS = (
    KUBERNETES_COMPONENT,
    ETCD_COMPONENT,
    KWOK_COMPONENT,
    KUSTOMIZE_COMPONENT,
    SOPS_COMPONENT,
    GITEA_COMPONENT,
    HELM_COMPONENT,
    REGISTRY_COMPONENT,
    GATEWAY_API_COMPONENT,
    METRICS_SERVER_COMPONENT,
)
