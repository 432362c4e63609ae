"""One App of 1000 objects, cold, through the agent, against ``tether sync`` of the same
repository and against Flux (one Kustomization), in the same run on the same control plane.

The repository (``app/``: ConfigMaps, Services without selectors and ServiceAccounts, a third
each, so no controller reacts to them and adds load) is served over smart HTTP on loopback and
all three read it from that URL. Each tool gets a fresh namespace per run:

- ``tether sync``: the whole process (start-up, fetch, render, plan, apply), timed from outside;
- the agent, already running and leading: the GitSource and the App are created together, timed
  until the App is Ready with the commit applied (so fetching counts, as for ``tether sync``);
- Flux, both controllers already running: the GitRepository and the Kustomization created
  together, timed until the Kustomization is Ready with the commit applied.

Also per tool: the API requests it sent (counted per identity, see ``bench/identity.py``) and its
peak RSS. Target: the agent no slower than ``tether sync``.

Run: ``.venv/bin/python -m bench.agent_big_app [--objects 1000] [--runs 1] [--no-flux]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench import scale
from bench.flux import controllers as flux
from bench.waiting import applied_and_ready, peak_rss_mib, until_all
from tether.agent import crds
from tether.source.workspace import commit_all, init_repository


def generate(repo: Path, count: int) -> str:
    init_repository(repo)
    app = repo / "app"
    app.mkdir(parents=True)
    for i in range(count):
        name = f"obj-{i:04d}"
        kind = i % 3
        if kind == 0:
            text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  index: '{i}'\n  payload: '{'x' * 64}'\n"
        elif kind == 1:
            text = (
                f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n"
                "  ports:\n    - port: 80\n      targetPort: 8080\n"
            )
        else:
            text = f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n"
        (app / f"{name}.yaml").write_text(text)
    return commit_all(repo, f"{count} objects")


def objects_in(bench: scale.Bench, namespace: str) -> int:
    names = bench.run("get", "configmaps,services,serviceaccounts", "-n", namespace, "-o", "name")
    return sum(1 for n in names.split() if "/obj-" in n)


def run_sync(bench: scale.Bench, url: str) -> tuple[float, float, float, int]:
    """seconds, requests, peak RSS MiB, objects for one cold ``tether sync``."""
    namespace = bench.namespace("big-sync")
    argv = scale.tether_sync(bench, url, "big", namespace)
    env = {**os.environ, "TETHER_DB": str(bench.tmp / f"audit-{namespace}.db")}
    before = bench.requests("sync")
    started = time.monotonic()
    log = bench.tmp / f"sync-{namespace}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # wait4: the child's peak RSS too
    elapsed = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"tether sync failed: {log.read_text()[-2000:]}")
    requests = bench.requests("sync") - before
    return elapsed, requests, usage.ru_maxrss / 1024, objects_in(bench, namespace)


def timed_apply(
    bench: scale.Bench, text: str, api_version: str, kind: str, namespace: str, commit: str
) -> float:
    started = time.monotonic()
    bench.apply(text)
    ready = asyncio.run(
        until_all(
            bench.connection,
            api_version,
            kind,
            namespace,
            1,
            applied_and_ready(commit),
            timeout=900,
        )
    )
    return max(ready.values()) - started


def run_agent(bench: scale.Bench, url: str, commit: str) -> tuple[float, float, float, int]:
    namespace = bench.namespace("big-agent")
    agent = scale.start_agent(bench, namespace)
    objects = scale.source_and_app(namespace, url, "big", interval="1m")
    try:
        before = bench.requests("agent")
        elapsed = timed_apply(
            bench, yaml.safe_dump_all(objects), crds.API_VERSION, "App", namespace, commit
        )
        requests = bench.requests("agent") - before
        return elapsed, requests, peak_rss_mib(agent.pid), objects_in(bench, namespace)
    finally:
        scale.stop(agent)


def run_flux(
    bench: scale.Bench, build: flux.FluxBuild, url: str, commit: str
) -> tuple[float, float, float, int]:
    namespace = bench.namespace("big-flux")
    controllers = scale.start_flux(bench, build, namespace)
    objects = [
        flux.git_repository(namespace, url, "1m"),
        flux.kustomization(namespace, "big", "app", "10m"),
    ]
    try:
        before = bench.requests("flux-source", "flux-kustomize")
        elapsed = timed_apply(
            bench, flux.dump(objects), flux.KUSTOMIZE_API, "Kustomization", namespace, commit
        )
        requests = bench.requests("flux-source", "flux-kustomize") - before
        rss = sum(peak_rss_mib(p) for p in controllers.pids)
        return elapsed, requests, rss, objects_in(bench, namespace)
    finally:
        controllers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-flux", action="store_true")
    args = parser.parse_args()
    build = None if args.no_flux else scale.flux_build()
    if isinstance(build, str):
        print(f"Flux is not measured: {build}")
        build = None
    bench = scale.setup()
    results: dict[str, list[tuple[float, float, float, int]]] = {}
    try:
        repos = bench.tmp / "git"
        commit = generate(repos / "big", args.objects)
        url = f"{scale.serve_git(bench, repos)}/big"
        for run in range(args.runs):
            results.setdefault("tether sync", []).append(run_sync(bench, url))
            results.setdefault("tether agent", []).append(run_agent(bench, url, commit))
            if build is not None:
                results.setdefault("flux", []).append(run_flux(bench, build, url, commit))
            print(
                f"  run {run + 1} ({scale.load()}): "
                + ", ".join(f"{k} {v[-1][0]:.1f}s" for k, v in results.items())
            )
    finally:
        bench.close()
    print(
        f"\none app of {args.objects} objects (ConfigMaps, Services, ServiceAccounts), cold, "
        f"from Git over HTTP; {args.runs} run(s), medians"
    )
    medians = {
        tool: [statistics.median(r[i] for r in runs) for i in range(4)]
        for tool, runs in results.items()
    }
    for tool, (seconds, requests, rss, objects) in medians.items():
        print(
            f"{tool:13} {seconds:6.1f}s  {objects:.0f} objects  {requests:.0f} API requests  "
            f"peak RSS {rss:.0f} MiB"
        )
    print(scale.load())
    sync, agent = medians["tether sync"][0], medians["tether agent"][0]
    print(f"ratio agent/tether sync = {scale.ratio(agent, sync)}  (target <= 1)")
    if "flux" in medians:
        print(f"ratio agent/flux = {scale.ratio(agent, medians['flux'][0])}")


if __name__ == "__main__":
    main()
