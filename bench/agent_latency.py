"""Agent latencies on the local control plane, against a peer measured in the same run.

1. Drift: edit a managed ConfigMap by hand N times (default 100) and time edit → restored, with
   the agent (shared watches + self-heal) and with the obvious peer: ``tether sync`` run in a
   tight loop (re-diffing everything on a timer with zero delay). p50 and p99 for both.
2. Push → applied: commit, send a signed webhook, time until the new value is in the cluster.

Run: ``.venv/bin/python -m bench.agent_latency [--edits 100]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.common import install_crds, start_agent
from tether.cluster import kubeconfig as kubeconfig_module
from tether.cluster.client import KubeClient
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import ensure_binary
from tether.source.workspace import commit_all, init_repository

SECRET = b"bench-secret"


def configmap(level: str) -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: {level}\n"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure_restores(client: KubeClient, namespace: str, edits: int) -> list[float]:
    """Edit, then wait on a watch for the value to come back; seconds per edit."""
    resource = await client.resource("v1", "ConfigMap")
    latencies = []
    for i in range(edits):
        edited = await client.merge_patch(
            resource, namespace, "settings", {"data": {"level": f"hand-{i}"}}
        )
        started = time.perf_counter()
        version = edited["metadata"]["resourceVersion"]
        async for event in client.watch(resource, namespace, version, timeout_seconds=60):
            obj = event.get("object") or {}
            if (
                obj.get("metadata", {}).get("name") == "settings"
                and (obj.get("data") or {}).get("level") == "info"
            ):
                latencies.append(time.perf_counter() - started)
                break
        await asyncio.sleep(0.05)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=100)
    args = parser.parse_args()
    cluster = DevCluster("bench")
    kubeconfig = cluster.up()
    kubectl = str(ensure_binary("kubectl"))
    install_crds(kubectl, kubeconfig)
    tmp = Path(tempfile.mkdtemp())
    namespace = f"bench-agent-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", "create", "namespace", namespace],
        check=True,
        capture_output=True,
    )
    repo = tmp / "repo"
    init_repository(repo)
    (repo / "cm.yaml").write_text(configmap("info"))
    commit_all(repo, "first")
    objects = f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: repo, namespace: {namespace}}}
spec: {{url: "{repo}", interval: 1h}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec: {{sourceRef: {{name: repo}}, path: ".", syncPolicy: {{selfHeal: true, interval: 1h}}}}
"""
    subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
        input=objects,
        text=True,
        check=True,
        capture_output=True,
    )
    (tmp / "secret").write_bytes(SECRET)
    port = 19440
    env = {**os.environ, "TETHER_DB": str(tmp / "audit.db")}
    agent = start_agent(kubeconfig, namespace, port, env, tmp / "secret")
    connection = kubeconfig_module.load(kubeconfig)

    async def run() -> tuple[list[float], list[float], list[float]]:
        async with KubeClient(connection) as client:
            resource = await client.resource("v1", "ConfigMap")
            while (await client.get(resource, namespace, "settings")) is None:
                await asyncio.sleep(0.1)
            agent_latencies = await measure_restores(client, namespace, args.edits)
            agent.send_signal(signal.SIGTERM)
            agent.wait(20)
            peer = subprocess.Popen(
                [
                    "bash",
                    "-c",
                    f"while true; do {sys.executable} -m tether.cli.main sync --source {repo} --app {namespace}/web "
                    f"-n {namespace} --timeout 0 --kubeconfig={kubeconfig} >/dev/null 2>&1; done",
                ],
                env=env,
            )
            try:
                peer_latencies = await measure_restores(client, namespace, max(10, args.edits // 5))
            finally:
                peer.kill()
                subprocess.run(["pkill", "-f", f"app {namespace}/web"], check=False)
            return agent_latencies, peer_latencies, []

    agent_latencies, peer_latencies, _ = asyncio.run(run())
    push = push_to_applied(kubectl, kubeconfig, namespace, repo, env, port)
    a50, a99 = percentile(agent_latencies, 0.5), percentile(agent_latencies, 0.99)
    p50, p99 = percentile(peer_latencies, 0.5), percentile(peer_latencies, 0.99)
    print(
        f"drift edit→restore, {len(agent_latencies)} edits: agent p50 {a50 * 1000:.0f} ms, p99 {a99 * 1000:.0f} ms"
        f"   (target p50 < 1 s)"
    )
    print(
        f"  peer `tether sync` in a tight loop, {len(peer_latencies)} edits: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        f"   ratio agent/peer p50 = {a50 / p50:.2f}"
    )
    print(
        f"push→applied with a webhook: median {statistics.median(push) * 1000:.0f} ms over {len(push)} pushes"
    )
    if os.environ.get("BENCH_KEEP_CLUSTER") != "1":
        cluster.down()


def push_to_applied(
    kubectl: str, kubeconfig: Path, namespace: str, repo: Path, env: dict[str, str], port: int
) -> list[float]:
    """Restart the agent, then commit + signed webhook, timed until the value is applied."""
    agent = start_agent(kubeconfig, namespace, port, env, repo.parent / "secret")
    times = []
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        time.sleep(3)
        for i in range(10):
            level = f"push-{i}"
            (repo / "cm.yaml").write_text(configmap(level).replace("level: push", "level: push"))
            commit_all(repo, f"push {i}")
            body = json.dumps({"url": str(repo)}).encode()
            signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
            started = time.perf_counter()
            httpx.post(
                f"http://127.0.0.1:{port}/hooks/generic",
                content=body,
                headers={"X-Tether-Signature": signature},
            )
            while True:
                out = subprocess.run(
                    [
                        kubectl,
                        f"--kubeconfig={kubeconfig}",
                        "-n",
                        namespace,
                        "get",
                        "configmap",
                        "settings",
                        "-o",
                        "jsonpath={.data.level}",
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
                if out == level:
                    times.append(time.perf_counter() - started)
                    break
                time.sleep(0.02)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)
    return times


if __name__ == "__main__":
    main()
