"""1000 Apps of 5 ConfigMaps each, from one Git repository, created at once: the agent against
Flux (source-controller + kustomize-controller) measured in the same run on the same control plane.

One repository (``apps/app-0000`` … ``apps/app-0999``, 5 ConfigMaps each) is served over smart
HTTP on loopback (Flux cannot read ``file://``); both tools fetch it from the same URL. For each
tool, in a namespace of its own, with the tool already running and idle:

- the source object and all the Apps (Kustomizations for Flux) are created in one
  ``kubectl apply``; **converge** is the time from then until every one is Ready with the commit
  applied (followed with one list + watch from outside);
- **requests** the tool sent during that time, and per minute when idle afterwards (a window
  that starts ``--settle`` seconds after convergence), counted by the API server per identity
  (see ``bench/identity.py``: ``apiserver_request_total`` has no user-agent label);
- **peak RSS**: VmHWM of the process (both Flux controllers summed, and each shown).

Both use the same intervals (``--interval`` for the apps, 1m for the source), prune on, no health
wait, and their default concurrency (agent ``--max-concurrent 4``; source-controller 2,
kustomize-controller 4). The agent runs first, Flux second, so Flux works against an etcd that
already holds the agent's 5000 ConfigMaps. Flux's published figure for 1000 Kustomizations is
printed as a reference only: it was measured elsewhere (16-core runner, kind, concurrency 20).

Run: ``.venv/bin/python -m bench.agent_1000_apps [--apps 1000] [--window 120] [--no-flux]``
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import scale
from bench.flux import controllers as flux
from bench.waiting import applied_and_ready, cpu_seconds, peak_rss_mib, rss_mib, until_all
from tether.agent import crds
from tether.source.workspace import commit_all, init_repository

OBJECTS_PER_APP = 5
FLUX_PUBLISHED = "Flux's published figure (flux-benchmark, 16-core runner): 1000 Kustomizations in 4 min 13 s, 223 MiB"


@dataclass
class Outcome:
    tool: str
    converge: float
    first_ready: float
    median_ready: float
    requests: float
    idle_per_minute: float
    peak_rss: dict[str, float]
    idle_rss: float
    cpu: float
    objects: int
    passes: float  # whole-app reconciles while converging
    idle_passes: float  # and during the idle window
    load: str


def write_repo(repo: Path, apps: int) -> str:
    init_repository(repo)
    for a in range(apps):
        folder = repo / "apps" / f"app-{a:04d}"
        folder.mkdir(parents=True)
        for o in range(OBJECTS_PER_APP):
            (folder / f"cm-{o}.yaml").write_text(
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{a:04d}-cm-{o}\n"
                f"data:\n  app: app-{a:04d}\n  index: '{o}'\n"
            )
    return commit_all(repo, f"{apps} apps")


def tether_objects(namespace: str, url: str, apps: int, interval: str) -> str:
    docs = [
        {
            "apiVersion": crds.API_VERSION,
            "kind": "GitSource",
            "metadata": {"name": "repo", "namespace": namespace},
            "spec": {"url": url, "interval": "1m"},
        }
    ]
    docs += [
        {
            "apiVersion": crds.API_VERSION,
            "kind": "App",
            "metadata": {"name": f"app-{a:04d}", "namespace": namespace},
            "spec": {
                "sourceRef": {"name": "repo"},
                "path": f"apps/app-{a:04d}",
                "syncPolicy": {"interval": interval, "prune": True, "selfHeal": True},
            },
        }
        for a in range(apps)
    ]
    return yaml.safe_dump_all(docs)


def flux_objects(namespace: str, url: str, apps: int, interval: str) -> str:
    docs = [flux.git_repository(namespace, url, "1m")]
    docs += [
        flux.kustomization(namespace, f"app-{a:04d}", f"apps/app-{a:04d}", interval)
        for a in range(apps)
    ]
    return flux.dump(docs)


def measure(
    bench: scale.Bench,
    tool: str,
    namespace: str,
    objects: str,
    kind: tuple[str, str],
    identities: tuple[str, ...],
    pids: dict[str, int],
    passes: Callable[[], float],
    args: argparse.Namespace,
    commit: str,
) -> Outcome:
    """Create everything at once, wait for all Ready, then watch the idle tool for a window."""
    requests_before, passes_before = bench.requests(*identities), passes()
    cpu_before = sum(cpu_seconds(p) for p in pids.values())
    started = time.monotonic()
    bench.apply(objects)
    ready = asyncio.run(
        until_all(
            bench.connection,
            kind[0],
            kind[1],
            namespace,
            args.apps,
            applied_and_ready(commit),
            timeout=args.timeout,
        )
    )
    times = sorted(t - started for t in ready.values())
    converge = times[-1]
    requests = bench.requests(*identities) - requests_before
    converged_passes = passes() - passes_before
    cpu = sum(cpu_seconds(p) for p in pids.values()) - cpu_before
    names = bench.run("get", "configmaps", "-n", namespace, "-o", "name").split()
    applied = sum(1 for n in names if n.startswith("configmap/app-"))
    print(f"  {tool}: all {args.apps} Ready after {converge:.1f}s; settling {args.settle:.0f}s")
    time.sleep(args.settle)
    idle_before, idle_passes = bench.requests(*identities), passes()
    time.sleep(args.window)
    idle = (bench.requests(*identities) - idle_before) * 60 / args.window
    idle_passes = passes() - idle_passes
    return Outcome(
        tool=tool,
        converge=converge,
        first_ready=times[0],
        median_ready=times[len(times) // 2],
        requests=requests,
        idle_per_minute=idle,
        peak_rss={name: peak_rss_mib(pid) for name, pid in pids.items()},
        idle_rss=sum(rss_mib(p) for p in pids.values()),
        cpu=cpu,
        objects=applied,
        passes=converged_passes,
        idle_passes=idle_passes,
        load=scale.load(),
    )


def run_agent(bench: scale.Bench, url: str, commit: str, args: argparse.Namespace) -> Outcome:
    namespace = bench.namespace("fleet-tether")
    agent = scale.start_agent(bench, namespace, extra=tuple(args.agent_arg))
    port = bench.ports[agent.pid]
    try:
        return measure(
            bench,
            "tether agent",
            namespace,
            tether_objects(namespace, url, args.apps, args.interval),
            (crds.API_VERSION, "App"),
            ("agent",),
            {"agent": agent.pid},
            lambda: scale.metric_sum(port, "tether_reconcile_duration_seconds_count"),
            args,
            commit,
        )
    finally:
        scale.stop(agent)


def run_flux(
    bench: scale.Bench, build: flux.FluxBuild, url: str, commit: str, args: argparse.Namespace
) -> Outcome:
    namespace = bench.namespace("fleet-flux")
    controllers = scale.start_flux(bench, build, namespace)
    try:
        source_pid, kustomize_pid = controllers.pids
        return measure(
            bench,
            "flux",
            namespace,
            flux_objects(namespace, url, args.apps, args.interval),
            (flux.KUSTOMIZE_API, "Kustomization"),
            ("flux-source", "flux-kustomize"),
            {"source-controller": source_pid, "kustomize-controller": kustomize_pid},
            lambda: scale.metric_sum(
                controllers.metrics_ports[1],
                "controller_runtime_reconcile_total",
                'controller="kustomization"',
            ),
            args,
            commit,
        )
    finally:
        controllers.stop()


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print(
        f"\n{args.apps} apps x {OBJECTS_PER_APP} ConfigMaps, one Git repository over HTTP, "
        f"app interval {args.interval}, idle window {args.window:.0f}s after {args.settle:.0f}s"
    )
    for o in outcomes:
        rss = " + ".join(f"{n} {v:.0f}" for n, v in o.peak_rss.items())
        print(
            f"{o.tool:13} converge {o.converge:6.1f}s (first {o.first_ready:.1f}s, median "
            f"{o.median_ready:.1f}s); {o.objects} ConfigMaps; {o.requests:.0f} API requests "
            f"({o.requests / args.apps:.1f}/app); CPU {o.cpu:.0f}s; peak RSS "
            f"{sum(o.peak_rss.values()):.0f} MiB ({rss}); idle: {o.idle_per_minute:.0f} "
            f"requests/min, RSS {o.idle_rss:.0f} MiB"
        )
        print(
            f"{'':13} whole-app reconciles: {o.passes:.0f} while converging "
            f"({o.passes / args.apps:.2f}/app), {o.idle_passes:.0f} in the idle window; {o.load}"
        )
    if len(outcomes) == 2:
        ours, theirs = outcomes
        print(
            f"ratios tether/flux: converge {scale.ratio(ours.converge, theirs.converge)}, "
            f"peak RSS {scale.ratio(sum(ours.peak_rss.values()), sum(theirs.peak_rss.values()))}, "
            f"requests {scale.ratio(ours.requests, theirs.requests)}, "
            f"idle requests/min {scale.ratio(ours.idle_per_minute, theirs.idle_per_minute)}"
        )
    print(f"reference, not measured here: {FLUX_PUBLISHED}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--interval", default="10m", help="App / Kustomization interval")
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--no-flux", action="store_true", help="measure the agent alone")
    parser.add_argument(
        "--agent-arg",
        action="append",
        default=[],
        help="one more flag for `tether agent` (repeatable), e.g. --agent-arg=--max-concurrent=8",
    )
    args = parser.parse_args()
    build = None if args.no_flux else scale.flux_build()
    if isinstance(build, str):
        print(f"Flux is not measured: {build}")
        build = None
    bench = scale.setup()
    try:
        repos = bench.tmp / "git"
        commit = write_repo(repos / "fleet", args.apps)
        url = f"{scale.serve_git(bench, repos)}/fleet"
        outcomes = [run_agent(bench, url, commit, args)]
        if build is not None:
            outcomes.append(run_flux(bench, build, url, commit, args))
        report(outcomes, args)
    finally:
        bench.close()


if __name__ == "__main__":
    main()
