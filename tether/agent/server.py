"""The agent's HTTP endpoints: ``/healthz``, ``/readyz``, ``/metrics`` and
``/hooks/{github,gitlab,gitea,generic}``."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tether.agent import metrics, webhooks
from tether.agent.controller import Agent
from tether.agent.leader import LeaderElector
from tether.agent.wakeup import request_fetch, wake_local
from tether.errors import ClusterError

log = logging.getLogger("tether.agent.server")


def build_app(
    agent: Agent, elector: LeaderElector, webhook_secret: bytes | None
) -> web.Application:
    """Readiness does not depend on leadership: a standby is ready (and takes webhooks) too."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if not elector.api_reachable:
            return web.Response(status=503, text="the Kubernetes API has not been reached yet")
        return web.Response(text="ok")

    async def metrics_page(_: web.Request) -> web.Response:
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def hook(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        if provider not in webhooks.PROVIDERS:
            return web.json_response({"error": f"unknown provider {provider!r}"}, status=404)
        body = await request.read()
        if webhook_secret is None:
            return web.json_response(
                {"error": "webhooks are disabled: start the agent with --webhook-secret-file"},
                status=403,
            )
        if not webhooks.verified(provider, request.headers, body, webhook_secret):
            log.warning("refused an unsigned or wrongly signed %s webhook", provider)
            return web.json_response({"error": "signature missing or invalid"}, status=401)
        try:
            urls = {webhooks.normalise(u) for u in webhooks.repository_urls(provider, body)}
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        if elector.is_leader:
            matched = wake_local(agent.fleet, urls)
        else:
            try:
                matched = await request_fetch(agent.client, agent.settings.namespace, urls)
            except ClusterError as error:
                log.warning("webhook could not be passed on to the leader: %s", error)
                return web.json_response({"error": "the Kubernetes API is unreachable"}, status=503)
        log.info(
            "webhook",
            extra={"provider": provider, "sources": matched, "leader": elector.is_leader},
        )
        return web.json_response({"sources": matched}, status=202)

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics_page),
            web.post("/hooks/{provider}", hook),
        ]
    )
    return app
