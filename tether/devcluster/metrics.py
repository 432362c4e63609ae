"""An opt-in resource metrics API (``metrics.k8s.io``) for a dev cluster, so HPAs really compute.

Not started for every dev cluster: ``metrics_cluster()`` runs a dev cluster of its own whose kwok
also plays the kubelet's ``/metrics/resource`` endpoint, then starts metrics-server (built from
its Go module, see ``versions.METRICS_SERVER``) against it and registers it as the
``v1beta1.metrics.k8s.io`` APIService.

How the pieces meet (the approach of kwokctl's binary runtime, re-expressed here):

- kwok's configuration gains a ``KwokConfiguration`` giving every fake node the InternalIP
  127.0.0.1, a ``Metric`` serving each node's resource metrics on kwok's own server under
  ``/metrics/nodes/<node>/metrics/resource``, and a ``ClusterResourceUsage`` that reads a pod's
  simulated usage from its annotations ``kwok.x-k8s.io/usage-cpu`` / ``…-memory`` (default 1m CPU
  and 1Mi memory; ``USAGE_CPU_ANNOTATION``).
- each fake node is annotated ``metrics.k8s.io/resource-metrics-path`` with that path, which
  metrics-server uses instead of ``/metrics/resource``; metrics-server reaches kwok at
  127.0.0.1 on kwok's port (``--kubelet-port``), skipping TLS verification of kwok's
  self-signed certificate (loopback only).
- the APIService points at an ExternalName Service ``localhost`` on metrics-server's port: the
  API server resolves it to loopback and proxies ``metrics.k8s.io`` there.

To change a pod's CPU as a load would, annotate the pod: ``kubectl annotate pod web-… \
kwok.x-k8s.io/usage-cpu=800m --overwrite``; metrics-server sees it within its resolution (``METRIC_RESOLUTION``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tether.devcluster.controlplane import FAKE_NODES, DevCluster
from tether.devcluster.provision import TextLog, ensure_binary
from tether.devcluster.servers import start_server, stop_server
from tether.devcluster.stages import STAGE_API_VERSION, PodStages
from tether.errors import DevClusterError

USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY_ANNOTATION = "kwok.x-k8s.io/usage-memory"
NODE_METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"
METRIC_RESOLUTION = "10s"
KUBELET_REQUEST_TIMEOUT = "5s"  # must be shorter than the resolution
_READY_TIMEOUT = 180.0


def node_metrics_path(node: str) -> str:
    return f"/metrics/nodes/{node}/metrics/resource"


def _series(name: str, dimension: str, kind: str, value: str) -> dict[str, Any]:
    labels = {
        "node": [],
        "pod": [("namespace", "pod.metadata.namespace"), ("pod", "pod.metadata.name")],
        "container": [
            ("container", "container.name"),
            ("namespace", "pod.metadata.namespace"),
            ("pod", "pod.metadata.name"),
        ],
    }[dimension]
    return {
        "name": name,
        "dimension": dimension,
        "kind": kind,
        "help": f"{name} (simulated by kwok)",
        "labels": [{"name": label, "value": expression} for label, expression in labels],
        "value": value,
    }


def _resource_metric() -> dict[str, Any]:
    """The series metrics-server reads from a kubelet's ``/metrics/resource``, per node."""
    series = [
        _series("scrape_error", "node", "gauge", "0"),
        _series("node_cpu_usage_seconds_total", "node", "counter", 'node.CumulativeUsage("cpu")'),
        _series("node_memory_working_set_bytes", "node", "gauge", 'node.Usage("memory")'),
        _series("container_start_time_seconds", "container", "gauge", "pod.SinceSecond()"),
        _series(
            "container_cpu_usage_seconds_total",
            "container",
            "counter",
            'pod.CumulativeUsage("cpu", container.name)',
        ),
        _series(
            "container_memory_working_set_bytes",
            "container",
            "gauge",
            'pod.Usage("memory", container.name)',
        ),
    ]
    return {
        "apiVersion": STAGE_API_VERSION,
        "kind": "Metric",
        "metadata": {"name": "resource-metrics"},
        "spec": {"path": node_metrics_path("{nodeName}"), "metrics": series},
    }


def _usage_expression(annotation: str, default: str) -> str:
    return (
        f'"{annotation}" in pod.metadata.annotations'
        f' ? Quantity(pod.metadata.annotations["{annotation}"]) : Quantity("{default}")'
    )


def _usage_from_annotations() -> dict[str, Any]:
    return {
        "apiVersion": STAGE_API_VERSION,
        "kind": "ClusterResourceUsage",
        "metadata": {"name": "usage-from-annotations"},
        "spec": {
            "usages": [
                {
                    "usage": {
                        "cpu": {"expression": _usage_expression(USAGE_CPU_ANNOTATION, "1m")},
                        "memory": {"expression": _usage_expression(USAGE_MEMORY_ANNOTATION, "1Mi")},
                    }
                }
            ]
        },
    }


class MetricsPodStages(PodStages):
    """The dev cluster's pod Stages plus what kwok needs to play the kubelet's resource metrics."""

    def documents(self) -> list[dict[str, Any]]:
        loopback_nodes = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            "options": {"nodeIP": "127.0.0.1"},
        }
        return [
            loopback_nodes,
            *super().documents(),
            _resource_metric(),
            _usage_from_annotations(),
        ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _anonymous_metrics_readers() -> list[dict[str, Any]]:
    """Read access to ``metrics.k8s.io`` for ``system:anonymous``, in this cluster only.

    The dev cluster's API server has no front-proxy client certificate
    (``--proxy-client-cert-file``), so it calls metrics-server without one and metrics-server
    sees every proxied request (``kubectl top``, the HPA controller) as anonymous, which its
    SubjectAccessReview then denies. Granting anonymous reads of the metrics stands in for the
    front proxy; the cluster listens on loopback only."""
    name = "tether-dev-metrics-readers"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [
            {
                "apiGroups": ["metrics.k8s.io"],
                "resources": ["pods", "nodes"],
                "verbs": ["get", "list", "watch"],
            },
            {  # the API server's discovery check of the APIService
                "nonResourceURLs": ["/apis/metrics.k8s.io", "/apis/metrics.k8s.io/*"],
                "verbs": ["get"],
            },
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}
        ],
    }
    return [role, binding]


class MetricsServer:
    """metrics-server run as a process against ``cluster`` and registered as its metrics API."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.cluster.directory / "logs" / "metrics-server.log"

    def _kubectl(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(ensure_binary("kubectl")), f"--kubeconfig={self.cluster.kubeconfig_path}", *args],
            capture_output=True,
            text=True,
            input=stdin,
            check=False,
        )
        if result.returncode != 0:
            raise DevClusterError(
                f"kubectl {' '.join(args)} failed for the metrics API: {result.stderr.strip()}"
            )
        return result.stdout

    def start(self, log: TextLog | None = None) -> MetricsServer:
        state = self.cluster.state()
        if state is None:
            raise DevClusterError(f"dev cluster {self.cluster.name!r} is not running")
        for node in FAKE_NODES:
            self._kubectl(
                "annotate",
                "node",
                node,
                f"{NODE_METRICS_PATH_ANNOTATION}={node_metrics_path(node)}",
                "--overwrite",
            )
        pki = self.cluster.pki
        kubeconfig = str(self.cluster.kubeconfig_path)
        argv = [
            str(ensure_binary("metrics-server", log)),
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-port={state.ports['kwok']}",
            "--kubelet-insecure-tls",
            f"--metric-resolution={METRIC_RESOLUTION}",
            f"--kubelet-request-timeout={KUBELET_REQUEST_TIMEOUT}",
        ]
        self._process = start_server(argv, self.cluster.directory, {}, self.log_path)
        self._kubectl("apply", "-f", "-", stdin=json.dumps(self._registration()))
        self._wait_available()
        return self

    def _registration(self) -> dict[str, Any]:
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metrics-server", "namespace": "kube-system"},
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"port": self.port, "protocol": "TCP"}],
            },
        }
        api_service = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "insecureSkipTLSVerify": True,
                "service": {
                    "name": "metrics-server",
                    "namespace": "kube-system",
                    "port": self.port,
                },
            },
        }
        return {
            "apiVersion": "v1",
            "kind": "List",
            "items": [service, api_service, *_anonymous_metrics_readers()],
        }

    def _wait_available(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
                raise DevClusterError(f"metrics-server exited; see {self.log_path}:\n{tail}")
            with contextlib.suppress(DevClusterError, ValueError):
                nodes = json.loads(
                    self._kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
                )
                if nodes.get("kind") == "NodeMetricsList":  # served and authorized
                    return
            time.sleep(1.0)
        raise DevClusterError(
            f"the metrics API (v1beta1.metrics.k8s.io) was not available after "
            f"{_READY_TIMEOUT:.0f}s; see {self.log_path}"
        )

    def stop(self) -> None:
        stop_server(self._process, grace=10.0)


@contextlib.contextmanager
def metrics_cluster(
    name: str, directory: Path, log: TextLog | None = None
) -> Iterator[tuple[DevCluster, MetricsServer]]:
    """A dev cluster with a real metrics API for the duration of a ``with`` block."""
    cluster = DevCluster(name, directory, pod_stages=MetricsPodStages())
    cluster.up(log)
    server = MetricsServer(cluster)
    try:
        server.start(log)
        yield cluster, server
    finally:
        server.stop()
        cluster.down()
