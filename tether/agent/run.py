"""Running an agent replica: HTTP endpoints up first, then leader election, then the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from tether.agent.controller import Agent
from tether.agent.leader import LeaderElector
from tether.agent.server import build_app
from tether.agent.settings import AgentSettings
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection

log = logging.getLogger("tether.agent")


async def run_agent(
    connection: Connection,
    settings: AgentSettings,
    listen: tuple[str, int],
    webhook_secret: bytes | None,
    lease_duration: float = 15.0,
) -> None:
    agent = Agent(connection, settings)
    # The Lease has a client of its own, so renewal never waits behind sync traffic.
    lease_client = KubeClient(connection, concurrency=2, timeout=lease_duration)
    lease = "tether-agent" if settings.shards == 1 else f"tether-agent-shard-{settings.shard}"
    elector = LeaderElector(
        lease_client, settings.lease_namespace, lease, settings.identity, lease_duration
    )
    runner = web.AppRunner(build_app(agent, elector, webhook_secret), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, listen[0], listen[1]).start()
    log.info(
        "agent started",
        extra={
            "identity": settings.identity,
            "listen": f"{listen[0]}:{listen[1]}",
            "namespace": settings.namespace or "*",
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    electing = asyncio.create_task(elector.run(agent.lead))
    await stop.wait()
    electing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await electing
    await elector.release()
    await lease_client.close()
    await agent.close()
    await runner.cleanup()
    log.info("agent stopped", extra={"identity": settings.identity})
