"""A front for the test registry that sends blob downloads elsewhere, as registries backed by
object storage do (a 307 to a pre-signed URL on another host): to check that credentials stay
with the registry's origin.

``RedirectingFront(registry_url, repository, login)`` listens on 127.0.0.1: every request is passed to the
real registry as it is (headers included), except ``GET /v2/…/blobs/sha256:…``, which is
answered ``307`` to the "storage" server on another port. The storage server records the
``Authorization`` header it was sent (``storage_authorizations``) and serves the blob, fetching
it from the registry with its own login (as a pre-signed URL would carry its own signature),
with ``extra`` bytes appended when asked to misbehave.
"""

from __future__ import annotations

import asyncio
import base64
import threading

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


class RedirectingFront:
    def __init__(
        self, registry_url: str, repository: str, login: tuple[str, str], extra: bytes = b""
    ) -> None:
        self.registry_url = registry_url
        self.repository = repository
        self.extra = extra  # appended to every blob served: a storage that sends too much
        token = base64.b64encode(":".join(login).encode()).decode()
        self._login = {"Authorization": f"Basic {token}"}
        self.storage_authorizations: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._started.wait(10)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._front_port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        front = web.Application(client_max_size=64 * 1024 * 1024)
        front.router.add_route("*", "/{tail:.*}", self._front)
        storage = web.Application()
        storage.router.add_get("/blob/{digest}", self._storage)
        self._runners = [web.AppRunner(front), web.AppRunner(storage)]
        ports = []
        for runner in self._runners:
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            ports.append(runner.addresses[0][1])
        self._front_port, self._storage_port = ports
        self._started.set()
        self._loop.run_forever()

    async def _front(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.split("/")
        if request.method == "GET" and len(parts) >= 4 and parts[-2] == "blobs":
            location = f"http://127.0.0.1:{self._storage_port}/blob/{parts[-1]}?signature=x"
            return web.Response(status=307, headers={"Location": location})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.registry_url + request.path_qs,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as answer,
        ):
            body = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            if "Location" in out and out["Location"].startswith(self.registry_url):
                out["Location"] = out["Location"].replace(self.registry_url, f"http://{self.host}")
            return web.Response(status=answer.status, headers=out, body=body)

    async def _storage(self, request: web.Request) -> web.Response:
        self.storage_authorizations.append(request.headers.get("Authorization", ""))
        blob = f"{self.registry_url}/v2/{self.repository}/blobs/{request.match_info['digest']}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(blob, headers=self._login) as answer,
        ):
            return web.Response(status=answer.status, body=await answer.read() + self.extra)

    def close(self) -> None:
        async def stop() -> None:
            for runner in self._runners:
                await runner.cleanup()
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pending:  # handlers of clients that hung up (a refused oversized blob)
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
