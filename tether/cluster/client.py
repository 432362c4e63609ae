"""An async, dynamic Kubernetes REST client: discovery, get, list, server-side apply, delete,
watch, for any kind (built-in or custom) addressed by apiVersion and kind.

Objects are plain dicts. Every failure becomes a ``ClusterError`` (``ApiError`` when the server
answered) whose message starts with the object it is about. Bearer tokens are attached per
request, so a rotated token file is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from tether.cluster.auth import KubeAuth
from tether.cluster.kubeconfig import Connection
from tether.errors import ClusterError

FIELD_MANAGER = "tether"
# Requests in flight at once. Measured on a 2-core machine running its own control plane, 4 beat
# 8, 16 and 24 (the API server, not the network, is the bottleneck there); raise it with
# --concurrency for a remote cluster where latency dominates. See docs/decisions/0001.
DEFAULT_CONCURRENCY = 4
_RETRY_STATUSES = (429, 503)
# How long past its server-side timeout a silent watch is given before it is declared dead.
_WATCH_READ_MARGIN = 30.0
_RETRIES = 4
SERVED_APIS_MAX_AGE = 60.0
"""Seconds the served API versions are trusted without rediscovery (a CRD another actor adds
is seen within this time; one Tether applies is seen at once, see ``forget_discovery``)."""


class ApiError(ClusterError):
    """The API server answered with an error status.

    ``withheld`` is the same error without the server's own text, which may echo the values
    sent: only the object, the verb, the status and each cause's field path and reason
    (``data[password]: FieldValueInvalid``). Errors about Secrets and decrypted objects use it.
    """

    def __init__(self, message: str, status: int, reason: str = "", withheld: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.withheld = withheld or message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


@dataclass(frozen=True)
class ServedApis:
    """What the server serves: its ``kube_version`` (``v1.33.2``) and every ``api_versions``
    entry, ``group/version`` and ``group/version/Kind`` alike (``apps/v1``,
    ``apps/v1/Deployment``), as ``helm template --api-versions`` takes them."""

    kube_version: str
    api_versions: tuple[str, ...]


@dataclass(frozen=True)
class Resource:
    """A resolved API resource: where objects of one kind live."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            prefix += f"/namespaces/{quote(namespace, safe='')}"
        path = f"{prefix}/{self.plural}"
        return f"{path}/{quote(name, safe='')}" if name else path


class KubeClient:
    """One connection pool to one API server, with a discovery cache."""

    def __init__(
        self,
        connection: Connection,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 30.0,
        impersonate: str = "",
    ) -> None:
        """``impersonate`` (``namespace/serviceaccount``) sends every request as that
        ServiceAccount, so the API server's RBAC decides what it may do."""
        self.connection = connection
        tls = connection.ssl_context()
        self._auth = KubeAuth(connection.credentials)  # one credential cache for both pools
        self._timeout = timeout
        self._transport = httpx.AsyncHTTPTransport(
            verify=tls,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        # Watches hold a connection each for minutes: they get their own pool, unbounded, so no
        # number of watched kinds can starve the requests above (see docs/decisions/0009).
        self._watch_transport = httpx.AsyncHTTPTransport(
            verify=tls, limits=httpx.Limits(max_connections=None, max_keepalive_connections=0)
        )
        self._limit = asyncio.Semaphore(concurrency)
        self._group_versions: dict[str, dict[str, Resource]] = {}
        self._preferred: dict[str, str] = {}
        # shared with the views (copy.copy), like the discovery above: (when read, what)
        self._served: dict[str, tuple[float, ServedApis]] = {}
        self._views: dict[str, KubeClient] = {}
        self._owns_pools = True
        self._open(impersonate)

    def _open(self, impersonate: str) -> None:
        """The HTTP clients over the pools, sending requests as ``impersonate`` (or as is)."""
        self.impersonated = impersonate
        headers = {"User-Agent": "tether/0.1", "Accept": "application/json"}
        if impersonate:
            namespace, _, name = impersonate.partition("/")
            headers["Impersonate-User"] = f"system:serviceaccount:{namespace}:{name}"
        self._http = httpx.AsyncClient(
            base_url=self.connection.server,
            auth=self._auth,
            timeout=self._timeout,
            headers=headers,
            transport=self._transport,
        )
        self._watch_http = httpx.AsyncClient(
            base_url=self.connection.server,
            auth=self._auth,
            headers=headers,
            transport=self._watch_transport,
        )

    def impersonating(self, service_account: str) -> KubeClient:
        """A client sending every request as ServiceAccount ``namespace/name``, over this
        client's connection pools, request limit and discovery cache (one per name, kept until
        this client is closed; closing it closes nothing)."""
        if service_account == self.impersonated:
            return self
        view = self._views.get(service_account)
        if view is None:
            view = copy.copy(self)
            view._owns_pools = False
            view._open(service_account)
            self._views[service_account] = view
        return view

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pools (a view from ``impersonating`` closes nothing)."""
        if self._owns_pools:
            await self._http.aclose()
            await self._watch_http.aclose()

    # -- transport ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """One API call; ``what`` names the object for error messages (``Deployment/ns/web``)."""
        headers = {"Content-Type": content_type} if body is not None else None
        for attempt in range(_RETRIES):
            async with self._limit:
                try:
                    response = await self._http.request(
                        method, path, params=params, content=body, headers=headers
                    )
                except httpx.HTTPError as error:
                    raise ClusterError(
                        f"{what}: cannot reach the API server at {self.connection.server} "
                        f"({type(error).__name__}: {error}); is the cluster up and the kubeconfig "
                        f"context {self.connection.context!r} right?"
                    ) from error
            if response.status_code in _RETRY_STATUSES and attempt < _RETRIES - 1:
                await asyncio.sleep(float(response.headers.get("Retry-After", 0.2 * 2**attempt)))
                continue
            if response.status_code >= 400:
                raise _api_error(response, what, method)
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    # -- discovery ---------------------------------------------------------------------------

    async def _load_group_version(self, api_version: str) -> dict[str, Resource]:
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        try:
            data = await self.request("GET", path, what=f"apiVersion {api_version}")
        except ApiError as error:
            if error.not_found:
                return {}
            raise
        group, _, version = api_version.rpartition("/")
        resources = {
            item["kind"]: Resource(group, version, item["kind"], item["name"], item["namespaced"])
            for item in data.get("resources", [])
            if "/" not in item["name"]
        }
        self._group_versions[api_version] = resources
        return resources

    async def resource(self, api_version: str, kind: str, *, refresh: bool = False) -> Resource:
        """Where objects of ``kind`` in ``api_version`` live; rediscovers once on a miss."""
        known = self._group_versions.get(api_version)
        if known is None or refresh or kind not in known:
            known = await self._load_group_version(api_version)
        if kind not in known:
            raise ClusterError(
                f"the API server has no kind {kind!r} in apiVersion {api_version!r}: check the "
                "spelling, or install the CustomResourceDefinition that defines it"
            )
        return known[kind]

    async def resource_for_group_kind(self, group: str, kind: str) -> Resource:
        """The resource for ``group``/``kind`` at the server's preferred version."""
        if not group:
            return await self.resource("v1", kind)
        if group not in self._preferred:
            data = await self.request("GET", "/apis", what="API discovery")
            self._preferred.update(
                {g["name"]: g["preferredVersion"]["groupVersion"] for g in data.get("groups", [])}
            )
        if group not in self._preferred:
            raise ClusterError(f"the API server has no API group {group!r} (kind {kind})")
        return await self.resource(self._preferred[group], kind)

    async def served_apis(self, max_age: float = SERVED_APIS_MAX_AGE) -> ServedApis:
        """The server's version and every API version it serves, with each of its kinds.

        Cached with the rest of discovery (one per connection, shared by the impersonating
        views): read again after ``max_age`` seconds, or after ``forget_discovery`` (which a
        sync calls once it has applied or pruned a CRD). Reading it also fills the kinds cache
        ``resource`` uses."""
        cached = self._served.get("all")
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        started = time.monotonic()
        version = await self.request("GET", "/version", what="the server's version")
        core = await self.request("GET", "/api", what="API discovery")
        groups = await self.request("GET", "/apis", what="API discovery")
        group_versions = list(core.get("versions") or [])
        for group in groups.get("groups") or []:
            group_versions += [v["groupVersion"] for v in group.get("versions") or []]
            self._preferred[group["name"]] = group["preferredVersion"]["groupVersion"]

        async def kinds(group_version: str) -> list[str]:
            try:
                resources = await self._load_group_version(group_version)
            except ApiError:
                return []  # an aggregated API that is down: its version is still listed
            return [f"{group_version}/{kind}" for kind in resources]

        listed = await asyncio.gather(*(kinds(gv) for gv in group_versions))
        served = ServedApis(
            str(version.get("gitVersion", "")),
            tuple(sorted({*group_versions, *(kind for found in listed for kind in found)})),
        )
        self._served["all"] = (started, served)
        return served

    def forget_discovery(self) -> None:
        """Drop cached discovery (after CRDs were created or removed)."""
        self._group_versions.clear()
        self._preferred.clear()
        self._served.clear()

    # -- verbs -------------------------------------------------------------------------------

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        what = _name(resource, namespace, name)
        try:
            result: dict[str, Any] = await self.request(
                "GET", resource.path(namespace, name), what=what
            )
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return result

    async def list(
        self, resource: Resource, namespace: str = "", label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Every object of ``resource`` (in ``namespace``, or all), following pagination."""
        items, _ = await self.list_with_version(resource, namespace, label_selector)
        return items

    async def list_with_version(
        self, resource: Resource, namespace: str = "", label_selector: str = ""
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Every object, and the list's resourceVersion (where a watch of it should start)."""
        params = {"limit": "500"}
        if label_selector:
            params["labelSelector"] = label_selector
        items: list[dict[str, Any]] = []
        while True:
            data = await self.request(
                "GET", resource.path(namespace), what=f"{resource.kind} list", params=params
            )
            for item in data.get("items", []):
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            metadata = data.get("metadata") or {}
            if not metadata.get("continue"):
                return items, str(metadata.get("resourceVersion", ""))
            params["continue"] = metadata["continue"]

    async def apply(
        self, resource: Resource, body: dict[str, Any], *, dry_run: bool, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply ``body`` with field manager ``tether``; the object as stored."""
        metadata = body.get("metadata", {})
        namespace, name = metadata.get("namespace", ""), metadata["name"]
        params = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        if dry_run:
            params["dryRun"] = "All"
        result: dict[str, Any] = await self.request(
            "PATCH",
            resource.path(namespace, name),
            what=_name(resource, namespace, name),
            params=params,
            body=json.dumps(body, separators=(",", ":")).encode(),
            content_type="application/apply-patch+yaml",
        )
        return result

    async def create(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        """Create one object (409 conflict raises ``ApiError`` with ``conflict`` set)."""
        metadata = body.get("metadata", {})
        namespace = metadata.get("namespace", "")
        result: dict[str, Any] = await self.request(
            "POST",
            resource.path(namespace),
            what=_name(resource, namespace, metadata.get("name", metadata.get("generateName", ""))),
            body=json.dumps(body).encode(),
        )
        return result

    async def replace(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        """Replace one object; its ``metadata.resourceVersion`` makes this a compare-and-swap."""
        metadata = body["metadata"]
        namespace, name = metadata.get("namespace", ""), metadata["name"]
        result: dict[str, Any] = await self.request(
            "PUT",
            resource.path(namespace, name),
            what=_name(resource, namespace, name),
            body=json.dumps(body).encode(),
        )
        return result

    async def merge_patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        field_manager: str = "",
    ) -> dict[str, Any]:
        """JSON merge-patch one object (small edits such as an annotation or ``spec.suspend``);
        ``field_manager``: the name managedFields record for the write (the server's default
        when empty)."""
        result: dict[str, Any] = await self.request(
            "PATCH",
            resource.path(namespace, name),
            what=_name(resource, namespace, name),
            params={"fieldManager": field_manager} if field_manager else None,
            body=json.dumps(patch).encode(),
            content_type="application/merge-patch+json",
        )
        return result

    async def patch_status(
        self, resource: Resource, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the ``status`` subresource of one object."""
        result: dict[str, Any] = await self.request(
            "PATCH",
            resource.path(namespace, name) + "/status",
            what=_name(resource, namespace, name) + " status",
            body=json.dumps({"status": status}).encode(),
            content_type="application/merge-patch+json",
        )
        return result

    async def delete(
        self, resource: Resource, namespace: str, name: str, *, dry_run: bool = False
    ) -> bool:
        """Delete one object (background propagation); False if it was already gone."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if dry_run:
            body["dryRun"] = ["All"]
        try:
            await self.request(
                "DELETE",
                resource.path(namespace, name),
                what=_name(resource, namespace, name),
                body=json.dumps(body).encode(),
            )
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True

    async def watch(
        self,
        resource: Resource,
        namespace: str = "",
        resource_version: str = "",
        label_selector: str = "",
        timeout_seconds: int = 300,
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events (``{"type": ..., "object": ...}``) until the server ends the stream.

        The server ends it after ``timeout_seconds``; bookmarks arrive at least once a minute,
        so a stream silent for ``timeout_seconds`` plus a margin is dead (a paused or partitioned
        API server) and raises ``ClusterError`` instead of hanging forever."""
        params = {
            "watch": "true",
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        silence = httpx.Timeout(10.0, read=timeout_seconds + _WATCH_READ_MARGIN)
        try:
            async with self._watch_http.stream(
                "GET", resource.path(namespace), params=params, timeout=silence
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _api_error(response, f"{resource.kind} watch", "GET")
                async for line in response.aiter_lines():
                    if line:
                        yield json.loads(line)
        except httpx.HTTPError as error:
            raise ClusterError(
                f"{resource.kind} watch: connection to {self.connection.server} broke "
                f"({type(error).__name__}: {error})"
            ) from error


def _name(resource: Resource, namespace: str, name: str) -> str:
    kind = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
    return f"{kind}/{namespace}/{name}" if namespace and resource.namespaced else f"{kind}/{name}"


# Answers whose text the API server builds from the request's identity, verb, kind, name and field
# paths alone, never from the object's values (authorization, not found, conflicts, throttling):
# their message stays whole even for a Secret, so a refusal still names who was refused.
_NO_VALUE_ECHO = frozenset({401, 403, 404, 405, 409, 429})


def _api_error(response: httpx.Response, what: str, method: str) -> ApiError:
    causes: list[str] = []
    try:
        status = response.json()
        message = status.get("message") or response.text
        reason = status.get("reason", "")
        causes = _causes(status)
    except (ValueError, AttributeError):
        message, reason = response.text.strip()[:500], ""
    verb = {
        "PATCH": "apply",
        "DELETE": "delete",
        "GET": "read",
        "POST": "create",
        "PUT": "replace",
    }.get(method, method.lower())
    refused = f"{what}: {verb} refused by the API server ({response.status_code} {reason})"
    if response.status_code in _NO_VALUE_ECHO:
        return ApiError(f"{refused}: {message}", response.status_code, reason)
    withheld = f"{refused}: {'; '.join(causes)}" if causes else refused
    withheld += " (the server's message is not shown: it may echo the object's values)"
    return ApiError(f"{refused}: {message}", response.status_code, reason, withheld)


def _causes(status: dict[str, Any]) -> list[str]:
    """``field: reason`` of each cause in a Status' details, without their messages."""
    details = status.get("details")
    found = details.get("causes") if isinstance(details, dict) else None
    causes = []
    for cause in found if isinstance(found, list) else []:
        if isinstance(cause, dict):
            field_path = str(cause.get("field") or "").strip()
            kind = str(cause.get("reason") or "").strip()
            causes.append(f"{field_path}: {kind}" if field_path else kind)
    return [c for c in causes if c][:20]
