"""Typed, defaulted views of App, GitSource, HelmSource and OCISource objects (the API server
already validated their shape against the CRD schema; this only reads them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tether.agent.annotations import (
    DELETION_POLICY_ANNOTATION,
    FINALIZER,
    REQUESTED_ANNOTATION,
    ROLLBACK_REQUEST_ANNOTATION,
)
from tether.core.ignore import IgnoreRule
from tether.core.inventory import app_identity
from tether.delivery.model import ACTION_ANNOTATION, request_writer
from tether.reconcile.charts import DEFAULT_VALUES_KEY, ChartSpec, ValuesReference

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str, default: float) -> float:
    """``1m30s`` → 90.0 (the CRD pattern guarantees the shape)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration or "")
    return sum(float(n) * _UNITS[u] for n, u in parts) if parts else default


@dataclass(frozen=True)
class ForgeSpec:
    """``GitSource.spec.forge``: the forge hosting the repository (for revert pull requests and
    commit statuses). Empty ``url``/``repository``: derived from the source's URL."""

    kind: str
    url: str
    repository: str
    secret_name: str  # its key ``token``, in the GitSource's namespace, read on every call

    @classmethod
    def of(cls, forge: Any) -> ForgeSpec | None:
        if not isinstance(forge, dict) or not forge.get("kind"):
            return None
        return cls(
            kind=str(forge["kind"]),
            url=str(forge.get("url") or ""),
            repository=str(forge.get("repository") or ""),
            secret_name=str((forge.get("secretRef") or {}).get("name") or ""),
        )


@dataclass(frozen=True)
class SourceSpec:
    namespace: str
    name: str
    url: str
    ref: str | None
    interval: float
    suspend: bool
    secret_name: str
    requested: str = ""  # tether.dev/reconcile-requested-at: a change means "fetch now"
    verify_secret: str = ""  # Secret with trusted SSH / OpenPGP public keys
    # spec.tokenFile: no longer read (a tenant could name any file on the agent's disk); kept
    # only so that a GitSource still setting it is told what to use instead (decision 0013)
    token_file: str = ""
    forge: ForgeSpec | None = None  # spec.forge: where revert pull requests go

    @classmethod
    def of(cls, obj: dict[str, Any]) -> SourceSpec:
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        ref = spec.get("ref") or {}
        semver = f"semver:{ref['semver']}" if ref.get("semver") else None
        chosen = ref.get("commit") or ref.get("tag") or ref.get("branch") or semver
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            url=spec["url"],
            ref=chosen,
            interval=seconds(spec.get("interval", ""), 60.0),
            suspend=bool(spec.get("suspend", False)),
            secret_name=(spec.get("secretRef") or {}).get("name", ""),
            requested=(meta.get("annotations") or {}).get(REQUESTED_ANNOTATION, ""),
            verify_secret=((spec.get("verify") or {}).get("secretRef") or {}).get("name", ""),
            token_file=spec.get("tokenFile", ""),
            forge=ForgeSpec.of(spec.get("forge")),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class HelmSourceSpec:
    """A HelmSource: a Helm repository (``https://`` with ``index.yaml``, or ``oci://``) and how
    to reach it. Which chart and versions is each App's (``spec.chart``), see decision 0023."""

    namespace: str
    name: str
    url: str
    interval: float
    suspend: bool
    secret_name: str  # keys username and password, or token
    cert_secret_name: str = ""  # key ca.crt: the CA bundle
    insecure: bool = False  # an oci:// registry served over plain http
    allowed_digests: tuple[str, ...] = ()  # oci:// only: the chart manifest digests accepted
    requested: str = ""

    kind = "HelmSource"

    @classmethod
    def of(cls, obj: dict[str, Any]) -> HelmSourceSpec:
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            url=spec["url"],
            interval=seconds(spec.get("interval", ""), 300.0),
            suspend=bool(spec.get("suspend", False)),
            secret_name=(spec.get("secretRef") or {}).get("name", ""),
            cert_secret_name=(spec.get("certSecretRef") or {}).get("name", ""),
            insecure=bool(spec.get("insecure", False)),
            allowed_digests=tuple(spec.get("allowedDigests") or ()),
            requested=(meta.get("annotations") or {}).get(REQUESTED_ANNOTATION, ""),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class OCISourceSpec:
    """An OCISource: one OCI artifact of plain manifests at a tag, a digest or a semver range,
    accepted only with a digest of ``allowed_digests`` when that list is given."""

    namespace: str
    name: str
    url: str
    ref: str  # a tag, "sha256:…" (a digest) or "semver:RANGE"; "latest" when none is given
    interval: float
    suspend: bool
    secret_name: str
    cert_secret_name: str = ""
    allowed_digests: tuple[str, ...] = ()
    insecure: bool = False  # the registry is served over plain http
    requested: str = ""

    kind = "OCISource"

    @classmethod
    def of(cls, obj: dict[str, Any]) -> OCISourceSpec:
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        ref = spec.get("ref") or {}
        semver = f"semver:{ref['semver']}" if ref.get("semver") else ""
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            url=spec["url"],
            ref=ref.get("digest") or ref.get("tag") or semver or "latest",
            interval=seconds(spec.get("interval", ""), 300.0),
            suspend=bool(spec.get("suspend", False)),
            secret_name=(spec.get("secretRef") or {}).get("name", ""),
            cert_secret_name=(spec.get("certSecretRef") or {}).get("name", ""),
            allowed_digests=tuple(spec.get("allowedDigests") or ()),
            insecure=bool(spec.get("insecure", False)),
            requested=(meta.get("annotations") or {}).get(REQUESTED_ANNOTATION, ""),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class AppSpec:
    namespace: str
    name: str
    generation: int
    source: str  # namespace/name of the source (of kind source_kind)
    path: str
    destination: str
    suspend: bool
    automated: bool
    prune: bool
    self_heal: bool
    interval: float
    health_timeout: float
    retry_limit: int
    backoff: float
    backoff_factor: int
    backoff_max: float
    project: str = ""  # namespace/name of the Project that limits this app
    decryption_secret: str = ""  # namespace/name of the Secret with age identities
    depends_on: tuple[str, ...] = ()
    ignore: tuple[IgnoreRule, ...] = field(default_factory=tuple)
    deleting: bool = False  # metadata.deletionTimestamp is set
    finalized: bool = field(default=False, compare=False)  # our finalizer is on the App
    orphan_on_delete: bool = False  # the deletion-policy annotation says "orphan"
    health_checks: tuple[dict[str, Any], ...] = ()  # spec.health.checks: CEL checks per kind
    health_grace: float = 30.0  # spec.health.gracePeriod: seconds a controller gets to report
    chart: ChartSpec | None = None  # spec.chart: spec.path is a Helm chart (docs/helm.md)
    source_kind: str = "GitSource"  # spec.sourceRef.kind: GitSource, HelmSource or OCISource
    # spec.chart.valuesSourceRef: namespace/name of the GitSource holding the values files of a
    # chart of a HelmSource ("" when it has none)
    values_source: str = ""
    rollback_request: str = ""  # the rollback-request annotation, as written (JSON)
    # spec.delivery as written (read by tether.delivery.model.read_delivery in the pass, where
    # a mistake fails the pass with its message), and the rollout-action annotations
    delivery: tuple[dict[str, Any], ...] = ()
    rollout_request: tuple[tuple[str, str], ...] = ()
    # who wrote the rollout-action annotation, as managedFields record it (decision 0032)
    rollout_request_writer: str = ""
    resource_version: str = field(default="", compare=False)

    @property
    def deletes_objects(self) -> bool:
        """Whether deleting the App deletes what it applied (Flux's rule: when it prunes)."""
        return self.prune and not self.orphan_on_delete

    @classmethod
    def of(cls, obj: dict[str, Any]) -> AppSpec:
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        annotations = meta.get("annotations") or {}
        policy = spec.get("syncPolicy") or {}
        retry = policy.get("retry") or {}
        backoff = retry.get("backoff") or {}
        namespace = meta["namespace"]
        return cls(
            namespace=namespace,
            name=meta["name"],
            generation=int(meta.get("generation", 0)),
            source=f"{namespace}/{spec['sourceRef']['name']}",
            path=spec.get("path") or ".",
            destination=(spec.get("destination") or {}).get("namespace") or namespace,
            suspend=bool(spec.get("suspend", False)),
            automated=bool(policy.get("automated", True)),
            prune=bool(policy.get("prune", False)),
            self_heal=bool(policy.get("selfHeal", True)),
            interval=seconds(policy.get("interval", ""), 300.0),
            health_timeout=seconds(spec.get("healthTimeout", ""), 300.0),
            retry_limit=int(retry.get("limit", 5)),
            backoff=seconds(backoff.get("duration", ""), 2.0),
            backoff_factor=int(backoff.get("factor", 2)),
            backoff_max=seconds(backoff.get("maxDuration", ""), 300.0),
            project=f"{namespace}/{spec['project']}" if spec.get("project") else "",
            decryption_secret=(
                f"{namespace}/{name}"
                if (name := ((spec.get("decryption") or {}).get("secretRef") or {}).get("name"))
                else ""
            ),
            depends_on=tuple(f"{namespace}/{d['name']}" for d in spec.get("dependsOn") or []),
            ignore=tuple(
                IgnoreRule(
                    kind=r["kind"],
                    group=r.get("group", ""),
                    name=r.get("name", ""),
                    namespace=r.get("namespace", ""),
                    json_pointers=tuple(r.get("jsonPointers") or ()),
                    managers=tuple(r.get("managedFieldsManagers") or ()),
                )
                for r in spec.get("ignoreDifferences") or []
            ),
            deleting=bool(meta.get("deletionTimestamp")),
            finalized=FINALIZER in (meta.get("finalizers") or []),
            orphan_on_delete=annotations.get(DELETION_POLICY_ANNOTATION) == "orphan",
            health_checks=tuple((spec.get("health") or {}).get("checks") or ()),
            health_grace=seconds((spec.get("health") or {}).get("gracePeriod", ""), 30.0),
            chart=_chart(spec, namespace),
            source_kind=spec["sourceRef"].get("kind") or "GitSource",
            values_source=_values_source(namespace, spec),
            rollback_request=str(annotations.get(ROLLBACK_REQUEST_ANNOTATION, "")),
            delivery=tuple(spec.get("delivery") or ()),
            rollout_request=tuple(
                sorted((k, v) for k, v in annotations.items() if k.startswith(ACTION_ANNOTATION))
            ),
            rollout_request_writer=request_writer(meta.get("managedFields") or []),
            resource_version=str(meta.get("resourceVersion", "")),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def inventory_name(self) -> str:
        """The app's identity in the inventory and audit: unique across namespaces."""
        return app_identity(self.name, self.namespace)

    @staticmethod
    def key_of_inventory(inventory_name: str) -> str:
        """The inverse of ``inventory_name`` (namespaces never contain a dot)."""
        namespace, _, name = inventory_name.partition(".")
        return f"{namespace}/{name}"

    def uses(self, kind: str, key: str) -> bool:
        """True when this App reads the source ``kind`` ``key`` (``namespace/name``): as its
        source, or (a GitSource) as where its chart's values files are."""
        if self.source_kind == kind and self.source == key:
            return True
        return kind == "GitSource" and self.values_source == key

    def next_backoff(self, failures: int) -> float:
        return float(
            min(self.backoff * self.backoff_factor ** max(failures - 1, 0), self.backoff_max)
        )


def _chart(spec: dict[str, Any], namespace: str) -> ChartSpec | None:
    """``spec.chart``: ``spec.path`` is a Helm chart in the GitSource, rendered with these
    values files (in the same repository), ConfigMaps and Secrets of the App's ``namespace``
    (``valuesFrom``) and inline values, as release ``releaseName``. On a HelmSource,
    ``spec.chart.name`` and ``version`` name the chart instead (its repository is filled in from
    the HelmSource when the App syncs)."""
    chart = spec.get("chart")
    if not isinstance(chart, dict):
        return None
    repository_chart = (spec.get("sourceRef") or {}).get("kind") == "HelmSource"
    return ChartSpec(
        str(chart.get("name") or "") if repository_chart else spec.get("path") or ".",
        version=str(chart["version"]) if repository_chart and chart.get("version") else None,
        values_files=tuple(chart.get("valuesFiles") or ()),
        values=dict(chart.get("values") or {}),
        release=str(chart.get("releaseName") or ""),
        patches=tuple(chart.get("postRenderPatches") or ()),
        values_from=tuple(
            ValuesReference(
                str(ref["kind"]),
                str(ref["name"]),
                namespace,
                str(ref.get("valuesKey") or DEFAULT_VALUES_KEY),
                str(ref.get("targetPath") or ""),
                bool(ref.get("optional", False)),
            )
            for ref in chart.get("valuesFrom") or ()
        ),
    )


def _values_source(namespace: str, spec: dict[str, Any]) -> str:
    """``namespace/name`` of ``spec.chart.valuesSourceRef`` (a GitSource), or ""."""
    ref = (spec.get("chart") or {}).get("valuesSourceRef") or {}
    return f"{namespace}/{ref['name']}" if ref.get("name") else ""
