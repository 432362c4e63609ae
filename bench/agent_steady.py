"""The agent in steady state: 200 apps of 5 objects each, nothing changing.

Measured over one minute after every app is Ready: the agent's RSS and CPU seconds, and the API
requests the whole control plane served (from kube-apiserver's own ``apiserver_request_total``;
a minute with no agent is measured first and subtracted). The peer is the obvious design —
re-diff everything on a timer: every minute, GET and server-side dry-run every object — run once
for one minute's worth of work and counted the same way.

Run: ``.venv/bin/python -m bench.agent_steady [--apps 200] [--window 60]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import ssl
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import yaml

from bench.common import install_crds, start_agent
from tether.agent import crds
from tether.cluster import kubeconfig as kubeconfig_module
from tether.cluster.client import KubeClient
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import ensure_binary
from tether.source.workspace import commit_all, init_repository

OBJECTS_PER_APP = 5


def api_requests(cluster: DevCluster) -> float:
    """Total requests served so far, from the API server's metrics."""
    state = cluster.state()
    assert state is not None
    context = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    context.load_cert_chain(str(cluster.pki.admin_cert), str(cluster.pki.admin_key))
    text = httpx.get(f"{cluster.server_url(state)}/metrics", verify=context, timeout=30).text
    return sum(
        float(m) for m in re.findall(r"^apiserver_request_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    )


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_repo(repo: Path, apps: int) -> None:
    init_repository(repo)
    for a in range(apps):
        for o in range(OBJECTS_PER_APP):
            path = repo / f"app-{a:03d}" / f"cm-{o}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a{a:03d}-cm{o}\ndata:\n  k: v{o}\n"
            )
    commit_all(repo, "generated apps")


def app_objects(namespace: str, repo: Path, apps: int) -> str:
    docs = [
        {
            "apiVersion": crds.API_VERSION,
            "kind": "GitSource",
            "metadata": {"name": "repo", "namespace": namespace},
            "spec": {"url": str(repo), "interval": "10m"},
        }
    ]
    docs += [
        {
            "apiVersion": crds.API_VERSION,
            "kind": "App",
            "metadata": {"name": f"app-{a:03d}", "namespace": namespace},
            "spec": {
                "sourceRef": {"name": "repo"},
                "path": f"app-{a:03d}",
                "syncPolicy": {"interval": "1m", "selfHeal": True},
            },
        }
        for a in range(apps)
    ]
    return yaml.safe_dump_all(docs)


async def peer_pass(connection: kubeconfig_module.Connection, namespace: str) -> None:
    """One tick of the obvious design: GET and dry-run every managed object."""
    async with KubeClient(connection) as client:
        resource = await client.resource("v1", "ConfigMap")
        items = await client.list(resource, namespace, "tether.dev/app")

        async def one(item: dict) -> None:
            await client.get(resource, namespace, item["metadata"]["name"])
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "data": item.get("data"),
                "metadata": {
                    "name": item["metadata"]["name"],
                    "namespace": namespace,
                    "labels": item["metadata"].get("labels"),
                },
            }
            await client.apply(resource, body, dry_run=True)

        await asyncio.gather(*(one(i) for i in items))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    cluster = DevCluster("bench")
    kubeconfig = cluster.up()
    kubectl = str(ensure_binary("kubectl"))

    def run(*argv: str, **extra: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl, f"--kubeconfig={kubeconfig}", *argv],
            check=True,
            capture_output=True,
            text=True,
            **extra,
        )  # type: ignore[call-overload]

    install_crds(kubectl, kubeconfig)
    namespace = f"bench-steady-{uuid.uuid4().hex[:6]}"
    run("create", "namespace", namespace)
    tmp = Path(tempfile.mkdtemp())
    write_repo(tmp / "repo", args.apps)

    baseline_start = api_requests(cluster)
    time.sleep(args.window)
    baseline = api_requests(cluster) - baseline_start

    run("apply", "-f", "-", input=app_objects(namespace, tmp / "repo", args.apps))
    agent = start_agent(
        kubeconfig, namespace, 19441, {**os.environ, "TETHER_DB": str(tmp / "audit.db")}
    )
    started = time.monotonic()
    expected = args.apps * OBJECTS_PER_APP
    while True:
        out = run(
            "get", "configmaps", "-n", namespace, "-l", "tether.dev/app", "-o", "name"
        ).stdout.split()
        if len(out) >= expected:
            break
        time.sleep(1)
    converge = time.monotonic() - started
    time.sleep(10)
    cpu_start, requests_start = process_cpu(agent.pid), api_requests(cluster)
    time.sleep(args.window)
    cpu, requests = process_cpu(agent.pid) - cpu_start, api_requests(cluster) - requests_start
    rss = process_rss_mib(agent.pid)
    agent.send_signal(signal.SIGTERM)
    agent.wait(30)

    peer_cpu_start, peer_requests_start = time.process_time(), api_requests(cluster)
    asyncio.run(peer_pass(kubeconfig_module.load(kubeconfig), namespace))
    peer_cpu, peer_requests = (
        time.process_time() - peer_cpu_start,
        api_requests(cluster) - peer_requests_start,
    )
    per_minute = 60.0 / args.window
    agent_rpm = max(requests - baseline, 0.0) * per_minute
    print(
        f"{args.apps} apps x {OBJECTS_PER_APP} objects; first convergence {converge:.0f}s; window {args.window:.0f}s"
    )
    print(
        f"agent steady state: RSS {rss:.0f} MiB, CPU {cpu * per_minute:.1f} s/min, "
        f"API requests {agent_rpm:.0f}/min (control plane without agent: {baseline * per_minute:.0f}/min, subtracted)"
    )
    print(
        f"peer (GET + dry-run every object once a minute): API requests {peer_requests:.0f}/min, "
        f"client CPU {peer_cpu:.1f} s/min;  ratio agent/peer requests = {agent_rpm / peer_requests:.2f}"
    )
    if os.environ.get("BENCH_KEEP_CLUSTER") != "1":
        cluster.down()


if __name__ == "__main__":
    main()
