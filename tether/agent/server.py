"""The agent's HTTP endpoints: ``/healthz``, ``/readyz``, ``/metrics`` and
``/hooks/{github,gitlab,gitea,generic}``.

Whatever a caller sends, a hook answers 2xx or 4xx (503 only while the Kubernetes API cannot be
reached): 401 unsigned, 400 unreadable body, 413 over ``MAX_BODY``, 404 unknown provider. A
delivery the forge already made (same delivery id) is answered 200 and wakes nothing.
"""

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


MAX_BODY = 4 * 1024 * 1024


def build_app(
    agent: Agent, elector: LeaderElector, webhook_secret: bytes | None
) -> web.Application:
    """Readiness does not depend on leadership: a standby is ready (and takes webhooks) too.
    An empty ``webhook_secret`` is refused (ValueError): it would authenticate anyone."""
    if webhook_secret is not None:
        webhooks.refuse_empty(webhook_secret, "the agent's settings")
    deliveries = webhooks.Deliveries()

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
        delivery = webhooks.delivery_id(provider, request.headers)
        if deliveries.seen(provider, delivery):
            log.info("ignored a replayed %s webhook delivery", provider)
            return web.json_response({"sources": [], "replay": True}, status=200)
        try:
            found = webhooks.repository_urls(provider, body, request.content_type)
        except webhooks.PayloadError as error:
            return web.json_response({"error": str(error)}, status=400)
        urls = {webhooks.normalise(u) for u in found}
        if elector.is_leader:
            matched = wake_local(agent.fleet, urls)
        else:
            try:
                matched = await request_fetch(agent.client, agent.settings.namespace, urls)
            except ClusterError as error:
                log.warning("webhook could not be passed on to the leader: %s", error)
                return web.json_response({"error": "the Kubernetes API is unreachable"}, status=503)
        deliveries.remember(provider, delivery)
        log.info(
            "webhook",
            extra={"provider": provider, "sources": matched, "leader": elector.is_leader},
        )
        return web.json_response({"sources": matched}, status=202)

    app = web.Application(client_max_size=MAX_BODY)
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics_page),
            web.post("/hooks/{provider}", hook),
        ]
    )
    return app
