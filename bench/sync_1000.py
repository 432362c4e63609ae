"""Sync N generated objects (ConfigMaps, Services, Deployments) into a fresh namespace, re-sync
with no change, and compare with ``kubectl apply --server-side`` on the same manifests against
the same control plane in the same run.

Targets (issue 2): Tether's cold sync at most a third of kubectl's time; the no-op re-sync of
1000 objects under 2 s and writing nothing (checked: every object's resourceVersion unchanged).
Both tools run as separate processes, started the same way, so start-up cost counts for both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import ensure_binary
from tether.source.workspace import commit_all, init_repository


def generate(root: Path, count: int) -> None:
    """count objects, a third of each kind, one file per object under root/app."""
    app = root / "app"
    app.mkdir(parents=True)
    for i in range(count):
        kind = i % 3
        name = f"obj-{i:04d}"
        if kind == 0:
            text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  index: '{i}'\n  payload: '{'x' * 64}'\n"
        elif kind == 1:
            text = (
                f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n"
                "  ports:\n    - port: 80\n      targetPort: 8080\n"
            )
        else:
            text = (
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n"
                f"  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n"
                f"        app: {name}\n    spec:\n      containers:\n        - name: main\n"
                "          image: registry.example.com/app:1.0\n          ports:\n            - containerPort: 8080\n"
            )
        (app / f"{name}.yaml").write_text(text)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(
            f"{argv[0]} failed ({result.returncode}):\n{result.stderr[-3000:]}\n{result.stdout[-3000:]}"
        )
    return elapsed, result


def kubectl_json(kubectl: str, kubeconfig: Path, *args: str) -> dict:
    out = subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", *args, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def tether_writes(kubectl: str, kubeconfig: Path, namespace: str) -> dict[str, tuple[str, str]]:
    """Per object: (resourceVersion, time of Tether's last apply). Both change only when Tether
    writes; a controller updating status changes the first alone."""
    items = kubectl_json(
        kubectl, kubeconfig, "-n", namespace, "get", "configmaps,services,deployments"
    )["items"]
    marks = {}
    for item in items:
        applied = [
            m.get("time", "")
            for m in item["metadata"].get("managedFields", [])
            if m.get("manager") == "tether"
        ]
        marks[f"{item['kind']}/{item['metadata']['name']}"] = (
            item["metadata"]["resourceVersion"],
            "".join(applied),
        )
    return marks


def wait_rollouts(kubectl: str, kubeconfig: Path, namespace: str) -> None:
    subprocess.run(
        [
            kubectl,
            f"--kubeconfig={kubeconfig}",
            "-n",
            namespace,
            "wait",
            "deployment",
            "--all",
            "--for=condition=Available",
            "--timeout=300s",
        ],
        capture_output=True,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--cluster", default="bench")
    args = parser.parse_args()

    cluster = DevCluster(args.cluster)
    kubeconfig = cluster.up()
    kubectl = str(ensure_binary("kubectl"))  # the pinned build first (find_binary's order)
    tether = str(Path(sys.executable).parent / "tether")
    env = {**os.environ, "TETHER_DB": str(Path(tempfile.mkdtemp()) / "audit.db")}
    suffix = uuid.uuid4().hex[:6]
    ns_tether, ns_kubectl = f"bench-tether-{suffix}", f"bench-kubectl-{suffix}"
    for ns in (ns_tether, ns_kubectl):
        subprocess.run(
            [kubectl, f"--kubeconfig={kubeconfig}", "create", "namespace", ns],
            check=True,
            capture_output=True,
        )

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        init_repository(repo)
        generate(repo, args.objects)
        commit_all(repo, "generated")
        sync = [
            tether,
            "sync",
            "--source",
            str(repo),
            "--path",
            "app",
            "--app",
            f"bench-{suffix}",
            "-n",
            ns_tether,
            "--timeout",
            "0",
            "-o",
            "json",
            f"--kubeconfig={kubeconfig}",
        ]
        apply = [
            kubectl,
            f"--kubeconfig={kubeconfig}",
            "apply",
            "--server-side",
            "--field-manager=bench",
            "-n",
            ns_kubectl,
            "-R",
            "-f",
            str(repo / "app"),
        ]

        tether_cold, result = timed(sync, env)
        report = json.loads(result.stdout)
        created = sum(1 for c in report["changes"] if c["action"] == "created")
        kubectl_cold, _ = timed(apply, env)
        wait_rollouts(kubectl, kubeconfig, ns_tether)
        wait_rollouts(kubectl, kubeconfig, ns_kubectl)
        before = tether_writes(kubectl, kubeconfig, ns_tether)
        tether_noop, result = timed(sync, env)
        after = tether_writes(kubectl, kubeconfig, ns_tether)
        unchanged = sum(
            1 for c in json.loads(result.stdout)["changes"] if c["action"] == "unchanged"
        )
        kubectl_noop, _ = timed(apply, env)

    writes = sum(
        1
        for key, (version, applied) in after.items()
        if before[key][0] != version and before[key][1] != applied
    )
    print(
        f"objects: {args.objects} (ConfigMaps, Services, Deployments); control plane: local, 2 cores"
    )
    print(
        f"cold sync      tether {tether_cold:6.2f}s ({created} created)   kubectl apply --server-side {kubectl_cold:6.2f}s"
        f"   ratio tether/kubectl = {tether_cold / kubectl_cold:.2f}  (target <= 0.33)"
    )
    print(
        f"no-op re-sync  tether {tether_noop:6.2f}s ({unchanged} unchanged, {writes} writes)"
        f"   kubectl apply --server-side {kubectl_noop:6.2f}s   ratio = {tether_noop / kubectl_noop:.2f}  (target < 2 s, 0 writes)"
    )
    cluster.down() if args.cluster == "bench" and os.environ.get(
        "BENCH_KEEP_CLUSTER"
    ) != "1" else None


if __name__ == "__main__":
    main()
