"""What the scale benchmarks observe from outside the measured process: when every object of a
kind is Ready (one list, then one watch: no polling load on the API server), and a process's
peak memory.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.cluster.client import ApiError, KubeClient
from tether.cluster.kubeconfig import Connection
from tether.errors import ClusterError


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}


def applied_and_ready(commit: str) -> Callable[[dict[str, Any]], bool]:
    """Ready=True with ``commit`` applied: a Tether App or a Flux Kustomization (whose
    ``lastAppliedRevision`` reads ``main@sha1:<commit>``)."""

    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        applied = str(status.get("lastAppliedRevision", ""))
        return condition(obj, "Ready").get("status") == "True" and applied.endswith(commit)

    return check


async def until_all(
    connection: Connection,
    api_version: str,
    kind: str,
    namespace: str,
    expected: int,
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
) -> dict[str, float]:
    """Follow every ``kind`` in ``namespace`` until ``expected`` of them satisfy ``done``; the
    monotonic time at which each one was first seen done. Raises TimeoutError after ``timeout``
    seconds (with how many were done)."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout

    def note(obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name not in seen and done(obj):
            seen[name] = time.monotonic()

    async with KubeClient(connection) as client:
        resource = await client.resource(api_version, kind)
        version = ""
        while len(seen) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(seen)} of {expected} {kind}s done after {timeout:.0f}s")
            if not version:
                items, version = await client.list_with_version(resource, namespace)
                for item in items:
                    note(item)
                continue
            try:
                async for event in client.watch(resource, namespace, version, timeout_seconds=60):
                    obj = event.get("object") or {}
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        note(obj)
                    if len(seen) >= expected or time.monotonic() > deadline:
                        break
            except (ApiError, ClusterError, ValueError):  # 410 or a broken stream: list again
                version = ""
                await asyncio.sleep(0.5)
    return seen


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM) so far, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
