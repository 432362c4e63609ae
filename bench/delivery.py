"""Rollback time: from the moment the stable version must come back to the stable version serving
all replicas again, with Tether and with its peers, ``kubectl rollout undo`` and Argo Rollouts'
controller, in the same run on the same control plane and the same app (a Deployment ``web`` of 4
replicas behind a Service; for Argo, a Rollout of the same template).

Four ways back, each ``--runs`` times:

- **kubectl rollout undo** (the peer): v1 then v2 applied with ``kubectl apply`` and rolled out;
  timed from the start of ``kubectl rollout undo deployment/web`` to v1 serving.
- **tether rollback**: v1 then v2 synced by the agent from Git (v1 kept as the last good
  render); timed from the start of ``tether rollback web --reason …`` (the CLI writes the
  request, the agent applies the last good render from its audit store) to v1 serving.
- **failed canary**: the App delivers ``web`` as a canary (25 %, an analysis of v2's error rate
  read from a real Prometheus, 100 %); v2 fails half its requests. Timed from the failing
  measurement (its ``finishedAt`` in the rollout's status) to v1 serving and the canary gone.
  Stable never stopped serving here (3 of 4 replicas); the time is how long the candidate keeps
  its share after the verdict.
- **Argo Rollouts: failed canary** (the peer of the one above): Argo Rollouts' own controller
  (``bench/argo``: v1.10.1 built from its Go module, one process per run watching only that
  run's namespace) delivers a ``Rollout`` of the same template with the same steps and the same
  AnalysisTemplate, reading the same Prometheus; v2 fails half its requests, Argo aborts. Timed
  from the failing measurement (its ``finishedAt`` in the AnalysisRun's status) to v1's
  ReplicaSet on 4 replicas (observed, available, no surplus pod) and the canary's ReplicaSet
  scaled to 0. Argo writes its times in whole seconds, cut down, so its figure is up to 1 s
  longer than what happened (0.5 s on average); Tether's is also given on that clock (its
  verdict cut to the second) for a like-for-like ratio, and Argo's from when the bench first saw
  its AnalysisRun Failed (late by a status write and a 50 ms poll: a lower bound).

"v1 serving" is: Deployment ``web`` at v1's image, its controller caught up
(``observedGeneration``), 4 replicas updated and available and no other pods of it left; seen by
polling the API server every 50 ms (the resolution of every figure). Pods of the dev cluster
(kwok) are Ready as soon as they are scheduled, so the figures are the control path's latency,
not an image's start-up.

The agent runs as ``tether agent --namespace NS`` (one per run, its own namespace), Git is served
over HTTP on loopback (``bench/gitserver.py``), the cluster is ``DevCluster("bench-delivery")``
(stopped at the end unless ``BENCH_KEEP_CLUSTER=1``). Prometheus is Debian's binary scraping the
tests' metrics app (``tests/delivery/signals.py``) every second.

The time of ``tether rollback`` is also split in two: the CLI until the request is written on
the App (a Python process's start-up, most of it importing the CLI's modules, then a
SelfSubjectReview and a patch) and the agent from the written request until v1 serves.

The first run builds Argo Rollouts' controller (``bench/argo/build.sh``, about 10 minutes on 2
loaded cores, once per machine); if that fails the reason is printed and the other three are
measured.

Run: ``.venv/bin/python -m bench.delivery [--runs 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench import scale
from bench.argo import controller as argo
from bench.common import install_crds
from tests.analysis.prom import Prometheus, prometheus_binary
from tests.delivery.signals import MetricsApp, error_ratio, new_version
from tether.audit import AuditStore
from tether.cluster.client import KubeClient
from tether.devcluster import versions
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import component_cache_dir, ensure_binary
from tether.source.workspace import commit_all, init_repository

CLUSTER = "bench-delivery"
REPLICAS = 4
POLL = 0.05
LIMIT = 240.0


def deployment(version: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {REPLICAS}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web, version: {version}}}}}
    spec:
      containers: [{{name: web, image: "registry.example/web:{version}"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80}}]
"""


def error_rate_template(prometheus: Prometheus) -> str:
    return f"""apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: error-rate}}
spec:
  args: [{{name: version}}]
  metrics:
    - name: error-rate
      interval: 1s
      count: 3
      failureLimit: 0
      successCondition: result[0] < 0.05
      provider:
        prometheus:
          address: {prometheus.url}
          query: '{error_ratio("{{args.version}}", "10s")}'
"""


def canary_delivery(version: str) -> str:
    return f"""  delivery:
    - target: {{kind: Deployment, name: web}}
      canary:
        steps:
          - setWeight: 25
          - analysis: {{templates: [{{templateName: error-rate}}], args: [{{name: version, value: "{version}"}}]}}
          - setWeight: 100
"""


def rollout(version: str) -> str:
    """``deployment(version)`` as Argo Rollouts writes it: the Deployment becomes a ``Rollout``
    with the steps of ``canary_delivery(version)`` (the same Service, the same template)."""
    workload, service = yaml.safe_load_all(deployment(version))
    steps = yaml.safe_load(canary_delivery(version))["delivery"][0]["canary"]["steps"]
    workload.update(apiVersion=argo.API, kind="Rollout")
    workload["spec"]["strategy"] = {"canary": {"steps": steps}}
    return yaml.safe_dump_all([workload, service])


def source_and_app(namespace: str, url: str, delivery: str = "") -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: repo, namespace: {namespace}}}
spec: {{url: "{url}", interval: 1s}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{name: repo}}
  path: app
  syncPolicy: {{prune: true, interval: 2s}}
  healthTimeout: 60s
{delivery}"""


def serving(image: str) -> Callable[[dict[str, Any] | None], bool]:
    """Deployment ``web`` at ``image`` on all its replicas, nothing else of it left."""

    def check(found: dict[str, Any] | None) -> bool:
        if not found:
            return False
        spec, status = found.get("spec") or {}, found.get("status") or {}
        containers = (spec.get("template") or {}).get("spec", {}).get("containers") or [{}]
        return (
            containers[0].get("image") == image
            and status.get("observedGeneration", 0) >= found["metadata"].get("generation", 1)
            and spec.get("replicas") == REPLICAS
            and status.get("updatedReplicas") == REPLICAS
            and status.get("availableReplicas") == REPLICAS
            and status.get("replicas") == REPLICAS
        )

    return check


async def until(
    client: KubeClient, namespace: str, check: Callable[[dict[str, Any] | None], bool]
) -> float:
    """Poll Deployment ``web`` (and that ``web-canary`` is gone) until ``check``; the time
    (``time.time()``) it was first seen so."""
    deployments = await client.resource("apps/v1", "Deployment")
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        web = await client.get(deployments, namespace, "web")
        if check(web) and await client.get(deployments, namespace, "web-canary") is None:
            return time.time()
        await asyncio.sleep(POLL)
    raise SystemExit(f"{namespace}: web did not come back within {LIMIT:.0f} s")


def image_of(workload: dict[str, Any]) -> str:
    containers = ((workload.get("spec") or {}).get("template") or {}).get("spec", {})
    return str((containers.get("containers") or [{}])[0].get("image", ""))


def rollout_serving(image: str) -> Callable[[list[dict[str, Any]]], bool]:
    """The Rollout's ReplicaSet of ``image`` on all replicas, every other ReplicaSet of it
    scaled to 0: Argo's equivalent of ``serving(image)`` with ``web-canary`` gone (Tether deletes
    the canary Deployment with background propagation, so neither waits for the canary's pods
    to be deleted)."""

    def check(replica_sets: list[dict[str, Any]]) -> bool:
        ours = [rs for rs in replica_sets if image_of(rs) == image]
        if len(ours) != 1:
            return False
        spec, status = ours[0].get("spec") or {}, ours[0].get("status") or {}
        others = [rs for rs in replica_sets if rs is not ours[0]]
        return (
            status.get("observedGeneration", 0) >= ours[0]["metadata"].get("generation", 1)
            and spec.get("replicas") == REPLICAS
            and status.get("replicas") == REPLICAS
            and status.get("availableReplicas") == REPLICAS
            and all((rs.get("spec") or {}).get("replicas") == 0 for rs in others)
        )

    return check


async def argo_timeline(
    client: KubeClient, namespace: str, stable: str, candidate: dict[str, Any]
) -> tuple[float | None, float]:
    """Apply the candidate Rollout (server-side, through the connection already open, so the
    first poll follows at once), then poll the namespace's AnalysisRuns until one is Failed and its
    ReplicaSets until ``rollout_serving(stable)``: (when the Failed run was first seen, or None if
    the first poll already found it so; when the stable was first seen back), as ``time.time()``.
    Polling from the apply on: the AnalysisRun exists only after the canary's 25 %, and Argo can
    scale the canary to 0 again before a poll sees it up."""
    analysis_runs = await client.resource(argo.API, "AnalysisRun")
    replica_sets = await client.resource("apps/v1", "ReplicaSet")
    back = rollout_serving(stable)
    await client.apply(await client.resource(argo.API, "Rollout"), candidate, dry_run=False)
    seen: float | None = None
    failed, first_poll = False, True
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if not failed:
            found = await client.list(analysis_runs, namespace)
            failed = any((r.get("status") or {}).get("phase") == "Failed" for r in found)
            seen = time.time() if failed and not first_poll else None
            first_poll = False
        if failed and back(await client.list(replica_sets, namespace)):
            return seen, time.time()
        await asyncio.sleep(POLL)
    raise SystemExit(f"{namespace}: the Rollout's stable did not come back within {LIMIT:.0f} s")


def wait_for(check: Callable[[], Any], what: str, limit: float = LIMIT) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit(f"timed out after {limit:.0f} s waiting for {what}")


class Run:
    """The cluster, kubectl, Git over HTTP, Prometheus and the metrics app of one benchmark."""

    def __init__(self) -> None:
        cluster = DevCluster(CLUSTER)
        kubeconfig = cluster.up()
        built = component_cache_dir(versions.KUBERNETES_COMPONENT) / "kubectl"
        kubectl = str(built if built.is_file() else ensure_binary("kubectl"))
        install_crds(kubectl, kubeconfig)
        tmp = Path(tempfile.mkdtemp(prefix="tether-bench-delivery-"))
        self.bench = scale.Bench(cluster, kubeconfig, kubectl, tmp)
        self.repos = tmp / "repos"
        self.repos.mkdir()
        self.git_url = scale.serve_git(self.bench, self.repos)
        self.metrics = MetricsApp()
        self.prometheus = Prometheus(prometheus_binary(), tmp / "prometheus", self.metrics.address)
        (tmp / "prometheus").mkdir()
        self.prometheus.start()
        self.split: dict[str, list[float]] = defaultdict(list)  # parts of a measured time

    def close(self) -> None:
        self.prometheus.stop()
        self.metrics.stop()
        self.bench.close()

    def kubectl(self, *argv: str, stdin: str | None = None) -> str:
        return self.bench.run(*argv, stdin=stdin)

    def deployment(self, namespace: str) -> dict[str, Any]:
        found = self.kubectl(
            "get", "deploy/web", "-n", namespace, "-o", "yaml", "--ignore-not-found"
        )
        return dict(yaml.safe_load(found) or {})

    def repo(self, name: str, files: dict[str, str]) -> tuple[Path, str]:
        root = self.repos / name
        init_repository(root)
        return root, self.commit(root, files, "v1")

    def commit(self, root: Path, files: dict[str, str], message: str) -> str:
        for path, text in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return commit_all(root, message)

    def app_status(self, namespace: str) -> dict[str, Any]:
        found = yaml.safe_load(
            self.kubectl("get", "apps.tether.dev/web", "-n", namespace, "-o", "yaml")
        )
        return dict(found.get("status") or {})

    def replica_sets(self, namespace: str) -> list[dict[str, Any]]:
        found = yaml.safe_load(self.kubectl("get", "replicasets", "-n", namespace, "-o", "yaml"))
        return list(found.get("items") or [])

    def argo_objects(self, namespace: str, kind: str) -> list[dict[str, Any]]:
        found = yaml.safe_load(
            self.kubectl("get", f"{kind}.argoproj.io", "-n", namespace, "-o", "yaml")
        )
        return list(found.get("items") or [])

    def argo_timeline(
        self, namespace: str, stable: str, candidate: str
    ) -> tuple[float | None, float]:
        rollout_v2 = next(d for d in yaml.safe_load_all(candidate) if d["kind"] == "Rollout")
        rollout_v2["metadata"]["namespace"] = namespace

        async def go() -> tuple[float | None, float]:
            async with KubeClient(self.bench.connection) as client:
                return await argo_timeline(client, namespace, stable, rollout_v2)

        return asyncio.run(go())

    def measure(self, namespace: str, image: str) -> float:
        async def go() -> float:
            async with KubeClient(self.bench.connection) as client:
                return await until(client, namespace, serving(image))

        return asyncio.run(go())


def kubectl_undo(run: Run) -> float:
    namespace = run.bench.namespace("undo")
    v1, v2 = new_version(), new_version()
    run.kubectl("apply", "-n", namespace, "-f", "-", stdin=deployment(v1))
    run.kubectl("rollout", "status", "-n", namespace, "deploy/web", "--timeout=120s")
    run.kubectl("apply", "-n", namespace, "-f", "-", stdin=deployment(v2))
    run.kubectl("rollout", "status", "-n", namespace, "deploy/web", "--timeout=120s")
    started = time.time()
    run.kubectl("rollout", "undo", "-n", namespace, "deploy/web")
    return run.measure(namespace, f"registry.example/web:{v1}") - started


def agent_with_v1_then_v2(run: Run, delivery: Callable[[str], str]) -> tuple[str, str, str]:
    """A namespace whose agent serves v1 (kept as the last good render) and has been handed v2;
    (namespace, v1, v2)."""
    namespace = run.bench.namespace("tether")
    v1 = new_version()
    files = {"app/web.yaml": deployment(v1)}
    if delivery is not no_delivery:
        files["app/template.yaml"] = error_rate_template(run.prometheus)
    _, good = run.repo(namespace, files)
    run.kubectl(
        "apply",
        "-f",
        "-",
        stdin=source_and_app(namespace, f"{run.git_url}/{namespace}", delivery(v1)),
    )
    scale.start_agent(run.bench, namespace)
    audit = run.bench.tmp / f"audit-{namespace}.db"

    def v1_kept() -> bool:
        if not serving(f"registry.example/web:{v1}")(run.deployment(namespace)):
            return False
        if not audit.exists():
            return False
        with AuditStore(str(audit)) as store:
            kept = store.last_good_render(f"{namespace}.web")
        return kept is not None and kept.revision.commit == good

    wait_for(v1_kept, "v1 serving and kept as the last good render")
    v2 = new_version()
    return namespace, v1, v2


def no_delivery(version: str) -> str:
    return ""


def tether_rollback(run: Run) -> float:
    namespace, v1, v2 = agent_with_v1_then_v2(run, no_delivery)
    run.commit(run.repos / namespace, {"app/web.yaml": deployment(v2)}, "v2")
    wait_for(lambda: serving(f"registry.example/web:{v2}")(run.deployment(namespace)), "v2 serving")
    argv = [
        sys.executable, "-m", "tether.cli.main", "rollback", "web", "-n", namespace,
        "--reason", "bench", f"--kubeconfig={run.bench.kubeconfig}",
    ]  # fmt: skip
    started = time.time()
    subprocess.run(argv, check=True, capture_output=True)
    written = time.time()
    back = run.measure(namespace, f"registry.example/web:{v1}")
    run.split["rollback: the CLI until the request is written"].append(written - started)
    run.split["rollback: the request written until v1 serves"].append(back - written)
    return back - started


def failed_canary(run: Run) -> float:
    namespace, v1, v2 = agent_with_v1_then_v2(run, canary_delivery)
    run.metrics.serve(v2, error_rate=0.5)
    wait_for(lambda: run.prometheus.query(error_ratio(v2, "10s")), "v2's errors in Prometheus")
    run.kubectl(
        "apply", "-f", "-",
        stdin=source_and_app(namespace, f"{run.git_url}/{namespace}", canary_delivery(v2)),
    )  # fmt: skip
    run.commit(run.repos / namespace, {"app/web.yaml": deployment(v2)}, "v2")
    wait_for(
        lambda: run.kubectl("get", "deploy", "-n", namespace, "-o", "name").count("web-canary"),
        "the canary to start",
    )
    back = run.measure(namespace, f"registry.example/web:{v1}")

    def recorded() -> dict[str, Any] | None:
        """The rollout once its abort is recorded: stable is restored first (decision 0032)."""
        found = (run.app_status(namespace).get("delivery") or {}).get("Deployment/web") or {}
        return found if found.get("phase") != "Progressing" else None

    # the first measurement of v2 that failed: the verdict
    rollout = wait_for(recorded, "the abort recorded in the App's status")
    analysis = rollout.get("analysis") or {}
    failed = [m for m in analysis.get("measurements") or [] if m.get("phase") == "Failed"]
    if rollout.get("phase") != "Aborted" or not failed:
        raise SystemExit(f"{namespace}: the canary was not aborted by its analysis: {rollout}")
    verdict = datetime.fromisoformat(failed[0]["finishedAt"]).timestamp()
    run.metrics.retire(v2)
    run.split[TETHER_ON_ARGOS_CLOCK].append(back - math.floor(verdict))
    return back - verdict


TETHER_ON_ARGOS_CLOCK = "failed canary: from the verdict cut to the second, as Argo records it"


def argo_failed_canary(run: Run, rollouts: argo.RolloutsBuild) -> float:
    """The failed canary with Argo Rollouts' controller instead of the agent: a Rollout of v1
    (Healthy), then v2 with the same steps and the same analysis of the same Prometheus; v2
    fails half its requests. From the failing measurement's ``finishedAt`` in the AnalysisRun's
    status (Argo writes whole seconds, cut down, so up to 1 s early) to v1's ReplicaSet on 4
    replicas and the canary's scaled to 0. Also kept: the same end from when the bench first saw
    the AnalysisRun Failed (late by Argo's status write and a poll, so a lower bound)."""
    namespace = run.bench.namespace("argo")
    controller = argo.RolloutsController(rollouts, run.bench.tmp, namespace, run.bench.kubeconfig)
    controller.start()
    try:
        v1, v2 = new_version(), new_version()
        stable = f"registry.example/web:{v1}"
        template = error_rate_template(run.prometheus)
        run.kubectl("apply", "-n", namespace, "-f", "-", stdin=f"{template}---\n{rollout(v1)}")

        def v1_healthy() -> bool:
            rollouts_found = run.argo_objects(namespace, "rollouts")
            phase = ((rollouts_found or [{}])[0].get("status") or {}).get("phase")
            return phase == "Healthy" and rollout_serving(stable)(run.replica_sets(namespace))

        wait_for(v1_healthy, f"{namespace}: the Rollout of v1 Healthy")
        run.metrics.serve(v2, error_rate=0.5)
        wait_for(lambda: run.prometheus.query(error_ratio(v2, "10s")), "v2's errors in Prometheus")
        seen, back = run.argo_timeline(namespace, stable, rollout(v2))
        verdict = argo_verdict(run, namespace)
    finally:
        controller.stop()
    run.metrics.retire(v2)
    if seen is not None:
        run.split[ARGO_SEEN].append(back - seen)
    return back - verdict


ARGO_SEEN = "Argo: from its AnalysisRun first seen Failed (a lower bound)"


def argo_verdict(run: Run, namespace: str) -> float:
    """When the first failing measurement of the namespace's AnalysisRun finished, as Argo
    recorded it; exits if the Rollout was not aborted by that analysis."""
    found = run.argo_objects(namespace, "rollouts")[0]
    status = found.get("status") or {}
    failed = [
        measurement
        for analysis in run.argo_objects(namespace, "analysisruns")
        if (analysis.get("status") or {}).get("phase") == "Failed"
        for result in analysis["status"].get("metricResults") or []
        for measurement in result.get("measurements") or []
        if measurement.get("phase") == "Failed"
    ]
    if not status.get("abort") or not failed:
        raise SystemExit(f"{namespace}: the Rollout was not aborted by its analysis: {status}")
    return min(datetime.fromisoformat(m["finishedAt"]).timestamp() for m in failed)


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):6.2f} s  min {min(values):6.2f} s  "
        f"max {max(values):6.2f} s  (n={len(values)})"
    )


def argo_build() -> argo.RolloutsBuild | str:
    """The controller, built if needed; or why it could not be, to print instead of its figure."""
    try:
        return argo.build()
    except argo.RolloutsBuildFailed as error:
        return str(error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rollouts = argo_build()
    if isinstance(rollouts, str):
        print(f"Argo Rollouts not measured: {rollouts}", flush=True)
    print(f"load at the start: {os.getloadavg()}", flush=True)
    run = Run()
    results: dict[str, list[float]] = {"undo": [], "rollback": [], "canary": [], "argo": []}
    try:
        if not isinstance(rollouts, str):
            argo.install_crds(run.bench.kubectl, run.bench.kubeconfig, rollouts)
        for i in range(args.runs):
            results["undo"].append(kubectl_undo(run))
            results["rollback"].append(tether_rollback(run))
            results["canary"].append(failed_canary(run))
            if not isinstance(rollouts, str):
                results["argo"].append(argo_failed_canary(run, rollouts))
            argo_figure = f", Argo {results['argo'][-1]:.2f} s" if results["argo"] else ""
            print(
                f"run {i + 1}: undo {results['undo'][-1]:.2f} s, rollback "
                f"{results['rollback'][-1]:.2f} s, failed canary {results['canary'][-1]:.2f} s"
                f"{argo_figure}, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    finally:
        run.close()
    print(f"load at the end: {os.getloadavg()}")
    print(f"kubectl rollout undo                 {summary(results['undo'])}")
    print(f"tether rollback                      {summary(results['rollback'])}")
    print(f"failed canary (verdict → stable)     {summary(results['canary'])}")
    if results["argo"]:
        print(f"Argo Rollouts: failed canary         {summary(results['argo'])}")
    for part, values in run.split.items():
        print(f"  {part:48} {summary(values)}")
    undo = statistics.median(results["undo"])
    canary = statistics.median(results["canary"])
    print(
        f"ratio tether rollback / kubectl undo: {statistics.median(results['rollback']) / undo:.2f}"
    )
    print(f"ratio failed canary / kubectl undo:   {canary / undo:.2f}")
    if results["argo"]:
        peer = statistics.median(results["argo"])
        same_clock = statistics.median(run.split[TETHER_ON_ARGOS_CLOCK])
        print(f"ratio Argo failed canary / kubectl undo: {peer / undo:.2f}")
        print(f"ratio Tether failed canary / Argo's:     {canary / peer:.2f}")
        print(f"  … both from the verdict cut to the second: {same_clock / peer:.2f}")


if __name__ == "__main__":
    main()
