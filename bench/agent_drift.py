"""Hand edits put back: edit→restore latency (p50, p99) in an App of 1000 objects and in an App of
35 kinds (tests/agent/kinds.py), with the agent and with the obvious peer, ``tether sync`` run
after each edit, in the same run on the same control plane.

For each app: the agent syncs it (selfHeal on), then ``--edits`` hand edits are made one after
the other (a ConfigMap's data in the big app; in the app of many kinds, in turn a ConfigMap, each
of the 15 custom resources, a PodDisruptionBudget, a Lease, and deleting a Role). Each edit is
timed from the API server's answer to the edit until a watch of that object shows the value Tether
applied again. The agent's API requests during the edits (per edit) are counted per identity
(``bench/identity.py``). Then the agent stops and the peer takes the same app (same identity
``<namespace>.web``): after each of ``--peer-edits`` edits, ``tether sync`` is run, timed the same
way (so it includes the process's start-up, fetch, render and the whole app's plan).

A second peer is the agent as it was before drift was put back object by object
(``--previous-agent``, default revision 77766b7 of this repository, extracted with
``git archive`` and run the same way, in a fresh namespace): it healed every drift with a
whole-app pass (fetch, render, plan and dry-run of every object, apply).

Target: agent p50 < 1 s.

Run: ``.venv/bin/python -m bench.agent_drift [--edits 50] [--peer-edits 10]
[--previous-edits 20] [--previous-agent REV|''] [--objects 1000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import scale
from bench.agent_big_app import generate
from bench.waiting import applied_and_ready, until_all
from tests.agent.kinds import CUSTOM_KINDS, many_kinds
from tether.agent import crds
from tether.cluster.client import KubeClient
from tether.source.workspace import commit_all, init_repository

# The agent before drift was put back object by object: it healed with a whole-app pass.
PREVIOUS_AGENT = "77766b7"


@dataclass(frozen=True)
class Edit:
    """One hand edit: ``patch`` (or deletion when None) and how to see it undone."""

    api_version: str
    kind: str
    name: str
    patch: dict[str, Any] | None
    path: tuple[str, ...]
    applied: Any  # the value Tether applied at ``path``

    def restored(self, obj: dict[str, Any]) -> bool:
        value: Any = obj
        for key in self.path:
            value = (value or {}).get(key) if isinstance(value, dict) else None
        return bool(value == self.applied)


def big_app_edits(objects: int) -> Callable[[int], Edit]:
    configmaps = list(range(0, objects, 3))

    def edit(i: int) -> Edit:
        index = configmaps[(i * 37) % len(configmaps)]
        return Edit(
            "v1",
            "ConfigMap",
            f"obj-{index:04d}",
            {"data": {"index": f"hand-{i}"}},
            ("data", "index"),
            str(index),
        )

    return edit


def many_kinds_edits(suffix: str) -> Callable[[int], Edit]:
    edits = [
        Edit("v1", "ConfigMap", "settings", None, ("data", "level"), "info"),
        Edit("policy/v1", "PodDisruptionBudget", "web", None, ("spec", "maxUnavailable"), 1),
        Edit(
            "coordination.k8s.io/v1",
            "Lease",
            "app-lock",
            None,
            ("spec", "holderIdentity"),
            "nobody",
        ),
        Edit(
            "rbac.authorization.k8s.io/v1", "Role", "reader", None, ("metadata", "name"), "reader"
        ),
    ]
    edits += [
        Edit(f"k{k}.{suffix}.test/v1", f"Widget{k}", "widget", None, ("spec", "size"), "small")
        for k in range(CUSTOM_KINDS)
    ]
    patches: dict[str, Callable[[int], dict[str, Any] | None]] = {
        "ConfigMap": lambda i: {"data": {"level": f"hand-{i}"}},
        "PodDisruptionBudget": lambda i: {"spec": {"maxUnavailable": 2 + i % 5}},
        "Lease": lambda i: {"spec": {"holderIdentity": f"hand-{i}"}},
        "Role": lambda i: None,  # deleted by hand
    }

    def widget(i: int) -> dict[str, Any] | None:
        return {"spec": {"size": f"huge-{i}"}}

    def edit(i: int) -> Edit:
        base = edits[i % len(edits)]
        make = patches.get(base.kind, widget)
        return Edit(base.api_version, base.kind, base.name, make(i), base.path, base.applied)

    return edit


async def time_edit(
    client: KubeClient, namespace: str, edit: Edit, after: Callable[[], Awaitable[None]]
) -> float:
    """Make ``edit``, run ``after`` (the peer's sync; nothing for the agent), and return the
    seconds until a watch shows the object restored."""
    resource = await client.resource(edit.api_version, edit.kind)
    if edit.patch is None:
        _, version = await client.list_with_version(resource, namespace)
        await client.delete(resource, namespace, edit.name)
    else:
        edited = await client.merge_patch(resource, namespace, edit.name, edit.patch)
        version = edited["metadata"]["resourceVersion"]
    started = time.perf_counter()

    async def watch() -> float:
        async for event in client.watch(resource, namespace, version, timeout_seconds=120):
            obj = event.get("object") or {}
            if (
                event.get("type") in ("ADDED", "MODIFIED")
                and obj.get("metadata", {}).get("name") == edit.name
                and edit.restored(obj)
            ):
                return time.perf_counter() - started
        raise TimeoutError(f"{edit.kind}/{edit.name} was not restored within 120 s")

    watching = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await after()
    return await watching


async def measure(
    bench: scale.Bench,
    namespace: str,
    edits: int,
    make: Callable[[int], Edit],
    after: Callable[[], Awaitable[None]],
    offset: int = 0,
) -> list[float]:
    latencies = []
    async with KubeClient(bench.connection) as client:
        for i in range(edits):
            latencies.append(await time_edit(client, namespace, make(offset + i), after))
            await asyncio.sleep(0.3)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def source_and_app(namespace: str, url: str) -> str:
    return yaml.safe_dump_all(scale.source_and_app(namespace, url, "web"))


def peer_sync(bench: scale.Bench, url: str, namespace: str) -> Callable[[], Awaitable[None]]:
    argv = scale.tether_sync(bench, url, "web", namespace)
    env = {**os.environ, "TETHER_DB": str(bench.tmp / f"audit-{namespace}.db")}

    async def sync() -> None:
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            sys.exit(f"tether sync failed: {err.decode()[-2000:]}")

    return sync


async def nothing() -> None:
    return None


@dataclass
class Result:
    app: str
    agent: list[float]
    agent_requests: float
    peer: list[float]
    previous: list[float]
    previous_requests: float


def agent_edits(
    bench: scale.Bench,
    namespace: str,
    app: tuple[str, str, Callable[[int], Edit]],
    edits: int,
    code: Path | None = None,
) -> tuple[list[float], float]:
    """Start an agent (``code``: another version of it), let it sync the app, time ``edits``
    edits; the latencies and the agent's API requests during them."""
    url, commit, make = app
    agent = scale.start_agent(bench, namespace, "agent" if code is None else "previous", code)
    try:
        bench.apply(source_and_app(namespace, url))
        asyncio.run(
            until_all(
                bench.connection,
                crds.API_VERSION,
                "App",
                namespace,
                1,
                applied_and_ready(commit),
                timeout=600,
            )
        )
        who = "agent" if code is None else "previous"
        settle, settle_requests = scale.until_quiet(bench, who)
        print(
            f"    after Ready, the agent worked {settle:.1f}s more ({settle_requests:.0f} "
            "API requests) before going quiet; the edits start then"
        )
        before = bench.requests(who)
        latencies = asyncio.run(measure(bench, namespace, edits, make, nothing))
        return latencies, bench.requests(who) - before
    finally:
        scale.stop(agent)


def run_app(
    bench: scale.Bench,
    label: str,
    app: Callable[[str], tuple[str, str, Callable[[int], Edit]]],
    args: argparse.Namespace,
    previous: Path | None,
) -> Result:
    """``app(namespace)``: the URL, commit and edits of the app to deploy in ``namespace``."""
    namespace = bench.namespace("drift")
    this = app(namespace)
    latencies, requests = agent_edits(bench, namespace, this, args.edits)
    print(f"  {label}: agent p50 {percentile(latencies, 0.5) * 1000:.0f} ms; now `tether sync`")
    peer = asyncio.run(
        measure(
            bench,
            namespace,
            args.peer_edits,
            this[2],
            peer_sync(bench, this[0], namespace),
            args.edits,
        )
    )
    before: list[float] = []
    before_requests = 0.0
    if previous is not None:
        print(f"  {label}: now the agent at {args.previous_agent}")
        namespace = bench.namespace("drift-prev")
        before, before_requests = agent_edits(
            bench, namespace, app(namespace), args.previous_edits, previous
        )
    return Result(label, latencies, requests, peer, before, before_requests)


def summary(values: list[float]) -> str:
    if not values:
        return "not measured"
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return f"p50 {p50 * 1000:5.0f} ms, p99 {p99 * 1000:5.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--peer-edits", type=int, default=10)
    parser.add_argument(
        "--previous-agent",
        default=PREVIOUS_AGENT,
        help="a revision of this repository whose agent healed drift with a whole-app pass "
        "('' to skip)",
    )
    parser.add_argument("--previous-edits", type=int, default=20)
    args = parser.parse_args()
    bench = scale.setup()
    results = []
    try:
        repos = bench.tmp / "git"
        big_commit = generate(repos / "big", args.objects)
        base = scale.serve_git(bench, repos)
        previous = scale.previous_code(bench, args.previous_agent) if args.previous_agent else None

        def big(namespace: str) -> tuple[str, str, Callable[[int], Edit]]:
            return f"{base}/big", big_commit, big_app_edits(args.objects)

        def kinds(namespace: str) -> tuple[str, str, Callable[[int], Edit]]:
            repo = repos / f"kinds-{namespace}"
            init_repository(repo)
            (repo / "app").mkdir()
            (repo / "app" / "app.yaml").write_text(many_kinds(namespace))
            commit = commit_all(repo, "many kinds")
            return f"{base}/{repo.name}", commit, many_kinds_edits(namespace)

        results.append(run_app(bench, f"{args.objects} objects", big, args, previous))
        results.append(run_app(bench, "35 kinds", kinds, args, previous))
    finally:
        bench.close()
    print(f"\nedit→restore on a local control plane, one run; {scale.load()}")
    for r in results:
        a50 = percentile(r.agent, 0.5)
        print(
            f"{r.app:14} agent ({len(r.agent)} edits): {summary(r.agent)}, "
            f"{r.agent_requests / len(r.agent):.1f} API requests/edit   (target p50 < 1 s)"
        )
        print(
            f"{'':14} peer `tether sync` after each edit ({len(r.peer)} edits): "
            f"{summary(r.peer)}   ratio agent/peer p50 = {scale.ratio(a50, percentile(r.peer, 0.5))}"
        )
        if r.previous:
            print(
                f"{'':14} previous agent {args.previous_agent}, a whole-app pass per drift "
                f"({len(r.previous)} edits): {summary(r.previous)}, "
                f"{r.previous_requests / len(r.previous):.1f} API requests/edit   ratio agent/previous "
                f"p50 = {scale.ratio(a50, percentile(r.previous, 0.5))}"
            )


if __name__ == "__main__":
    main()
