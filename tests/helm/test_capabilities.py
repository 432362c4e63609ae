"""The cluster's capabilities (``--kube-version``, ``--api-versions``) read once per client and
reused by every chart sync, read again once a sync applied a CRD (or after a short time).

The requests are counted on the real client (every call goes through ``KubeClient.request``)
while real chart syncs run against the real control plane.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import GitRepo, Kubectl
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load
from tether.core.inventory import app_identity
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import ensure_binary
from tether.reconcile.charts import ChartSpec
from tether.reconcile.options import SyncOptions
from tether.reconcile.run import SourceSpec, run_sync

# A discovery request: /version, /api, /apis, /api/v1, /apis/GROUP/VERSION (no resource path)
DISCOVERY = re.compile(r"^/(version|api|apis|api/[^/]+|apis/[^/]+/[^/]+)$")

CHART_YAML = "apiVersion: v2\nname: probe\nversion: 0.1.0\n"
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
PROBE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: probe
data:
  served: {{ .Capabilities.APIVersions.Has "%s/v1/Gadget" | quote }}
"""


class Counting:
    """Counts the requests of one real client, by path."""

    def __init__(self, client: KubeClient) -> None:
        self.paths: list[str] = []
        real: Callable[..., Awaitable[Any]] = client.request

        async def request(method: str, path: str, **kwargs: Any) -> Any:
            self.paths.append(path)
            return await real(method, path, **kwargs)

        client.request = request  # type: ignore[method-assign]

    def take(self) -> tuple[int, int]:
        """(all requests, discovery requests) since the last call."""
        paths, self.paths = self.paths, []
        return len(paths), sum(1 for path in paths if DISCOVERY.match(path))


def test_capabilities_are_read_once_and_again_after_a_crd_is_applied(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, repo: GitRepo
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.tests.tether.dev"
    repo.write("chart/Chart.yaml", CHART_YAML)
    repo.write("chart/templates/crd.yaml", CRD.format(group=group))
    repo.write("chart/templates/probe.yaml", PROBE % group)
    repo.commit("a chart whose CRD changes what the cluster serves")
    spec = SourceSpec(str(repo.root), chart=ChartSpec("chart"))
    options = SyncOptions(app_identity("probe", namespace), namespace=namespace, timeout=0)
    helm = ensure_binary("helm")

    async def syncs() -> list[tuple[int, int, str]]:
        found = []
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            counting = Counting(client)
            for _ in range(3):
                report = await run_sync(
                    spec, options, client.connection, audit=None, actor="test", client=client,
                    helm=helm,
                )  # fmt: skip
                assert report.succeeded, report.error
                served = kubectl.get("configmap", "probe", namespace)
                assert served is not None
                found.append((*counting.take(), served["data"]["served"]))
        return found

    first, second, third = asyncio.run(syncs())
    # the first sync discovers everything (one GET per API group version) and creates the CRD
    assert first[1] >= 20 and first[2] == "false", first
    # the CRD it applied made the sync drop the cache: the next render sees the new kind
    assert second[1] >= 20 and second[2] == "true", second
    # nothing changed what the cluster serves: the third sync asks discovery nothing
    assert third[1] == 0 and third[2] == "true", third
    assert third[0] <= first[0] - first[1]
    print(f"requests per chart sync: first {first[:2]}, after a CRD {second[:2]}, then {third[:2]}")


def test_an_impersonating_view_shares_the_cache_and_it_expires(dev_cluster: DevCluster) -> None:
    async def reads() -> tuple[int, int, int, int]:
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            counting = Counting(client)
            served = await client.served_apis()
            cold = counting.take()[0]
            view = client.impersonating("default/default")
            assert await view.served_apis() == served  # the view reads the shared cache
            warm = counting.take()[0]  # the view shares the counting, too
            again = await client.served_apis(max_age=0)  # too old: read again
            expired = counting.take()[0]
            assert again.kube_version == served.kube_version
            client.forget_discovery()
            await client.served_apis()
            return cold, warm, expired, counting.take()[0]

    cold, warm, expired, forgotten = asyncio.run(reads())
    assert cold >= 20 and warm == 0 and expired == cold and forgotten == cold
