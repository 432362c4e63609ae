"""Recorded contract (a stand-in for GitHub/GitLab, which cannot run here): a loopback aiohttp
server that replays recorded request → response pairs and fails the test on anything else.

GitHub and GitLab cannot run on this machine, so their drivers are tested against contracts:
YAML files under ``tests/forge/contracts/{github,gitlab}/``, written from the forges' public
REST documentation (endpoints, parameters, field names, status codes and error bodies). Each
file is an ordered list of exchanges; a test loads one or more files and the driver must make
exactly those requests, in that order:

    contract: what the file records
    docs: [the API documentation pages it follows]
    headers: {header: value sent with every request}      # optional
    exchanges:
      - doc: the endpoint, as its documentation names it
        request:
          method: POST
          path: /api/v3/repos/platform/gitops/git/refs      # raw, percent-encoding included
          query: {per_page: "100"}                           # exactly these parameters
          auth: Bearer {token}                               # the Authorization header
          body: {ref: refs/heads/…, sha: …}                  # fields that must be sent
        response:
          status: 201
          headers: {Link: '<{base}/…>; rel="next"'}
          body: {…}

A request matches when its method, raw path and whole query are the recorded ones, every
recorded body field is present with the recorded value (``{any}`` accepts any value; nested
objects and list items are matched the same way, extra fields are allowed), and the recorded
headers are sent. ``{token}`` stands for the test's token and ``{base}`` for this server's
address. Anything else is answered ``418`` with what differed, and the test fails when the
replay ends, as it does when a recorded exchange was never asked for. Tokens are never printed:
a mismatch shows ``{token}`` in their place.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

import pytest
import yaml
from aiohttp import web

CONTRACTS = Path(__file__).parent
ANY = "{any}"


class _Closable(Protocol):
    """A driver (or a bare transport) pointed at the replay, closed when the test is done."""

    async def close(self) -> None: ...


_Driver = TypeVar("_Driver", bound=_Closable)
_T = TypeVar("_T")


class Pauses:
    """A driver's ``sleep``, recorded instead of waited for."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


def replayed(
    contracts: list[str],
    token: str,
    driver: Callable[[str], _Driver],
    act: Callable[[_Driver], Awaitable[_T]],
) -> _T:
    """``act(forge)``, with ``forge = driver(address of the replay of contracts)``; the test
    fails if the driver strays from the contracts or leaves part of them unasked."""

    async def scenario() -> _T:
        async with ContractReplay(contracts, token=token) as replay:
            forge = driver(replay.origin)
            try:
                return await act(forge)
            finally:
                await forge.close()

    return asyncio.run(scenario())


@dataclass
class Exchange:
    """One recorded request and the answer the forge gives to it."""

    source: str
    doc: str
    request: dict[str, Any]
    response: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def load_exchanges(names: Iterable[str]) -> list[Exchange]:
    exchanges: list[Exchange] = []
    for name in names:
        path = CONTRACTS / name
        data = yaml.safe_load(path.read_text())
        assert str(data.get("contract", "")).startswith("Recorded contract"), (
            f"{path}: a contract file says what it records in 'contract: Recorded contract …'"
        )
        for number, item in enumerate(data["exchanges"], start=1):
            exchanges.append(
                Exchange(
                    source=f"{name} exchange {number}",
                    doc=str(item.get("doc", "")),
                    request=item["request"],
                    response=item["response"],
                    headers=dict(data.get("headers") or {}),
                )
            )
    return exchanges


class ContractReplay:
    """The replay server: ``async with ContractReplay(["github/x.yaml"], token=T) as forge:``
    then point a driver at ``forge.url``. On leaving, the test fails unless every request
    matched its exchange and every exchange was asked for."""

    def __init__(self, names: Iterable[str], *, token: str, prefix: str = "") -> None:
        self.exchanges = load_exchanges(names)
        self.token = token
        self.prefix = prefix
        self.served = 0
        self.mismatches: list[str] = []
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self.prefix}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def __aenter__(self) -> ContractReplay:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        problems = list(self.mismatches)
        for exchange in self.exchanges[self.served :]:
            request = exchange.request
            problems.append(
                f"{exchange.source} ({exchange.doc}) was never asked for: "
                f"{request['method']} {request['path']}"
            )
        if problems:
            pytest.fail("the driver broke its recorded contract:\n- " + "\n- ".join(problems))

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        shown = f"{request.method} {request.rel_url.raw_path}?{request.rel_url.raw_query_string}"
        if self.served >= len(self.exchanges):
            return self._refuse(f"{shown}: no recorded exchange is left for it")
        exchange = self.exchanges[self.served]
        differences = self._differences(exchange, request, body)
        if differences:
            return self._refuse(
                f"{shown} does not match {exchange.source} ({exchange.doc}): "
                + "; ".join(differences)
            )
        self.served += 1
        return self._recorded_answer(exchange.response)

    def _refuse(self, problem: str) -> web.Response:
        problem = problem.replace(self.token, "{token}") if self.token else problem
        self.mismatches.append(problem)
        return web.json_response({"message": f"no recorded contract: {problem}"}, status=418)

    def _differences(self, exchange: Exchange, request: web.Request, body: bytes) -> list[str]:
        expected = exchange.request
        found: list[str] = []
        if request.method != expected["method"]:
            found.append(f"method {request.method}, recorded {expected['method']}")
        if request.rel_url.raw_path != expected["path"]:
            found.append(f"path {request.rel_url.raw_path}, recorded {expected['path']}")
        query = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        recorded_query = {key: str(value) for key, value in (expected.get("query") or {}).items()}
        if query != recorded_query:
            found.append(f"query {query}, recorded {recorded_query}")
        auth = str(expected.get("auth", "")).replace("{token}", self.token)
        if request.headers.get("Authorization", "") != auth:
            found.append(f"Authorization is not of the recorded shape {expected.get('auth')!r}")
        for name, value in exchange.headers.items():
            if request.headers.get(name) != value:
                found.append(f"header {name}: {request.headers.get(name)!r}, recorded {value!r}")
        if "body" in expected:
            try:
                sent = json.loads(body or b"null")
            except ValueError:
                return [*found, "the body is not JSON"]
            if request.headers.get("Content-Type", "").split(";")[0] != "application/json":
                found.append("the body is not sent as application/json")
            found += _body_differences(expected["body"], sent, "body")
        elif body:
            found.append("a body was sent where none is recorded")
        return found

    def _recorded_answer(self, recorded: dict[str, Any]) -> web.Response:
        headers = {
            name: str(value).replace("{base}", self.origin)
            for name, value in (recorded.get("headers") or {}).items()
        }
        status = int(recorded["status"])
        if "body" not in recorded:
            return web.Response(status=status, headers=headers)
        text = json.dumps(_with_base(recorded["body"], self.origin))
        return web.Response(
            status=status, text=text, content_type="application/json", headers=headers
        )


def _body_differences(recorded: Any, sent: Any, where: str) -> list[str]:
    if recorded == ANY:
        return [] if sent is not None else [f"{where} is missing"]
    if isinstance(recorded, dict):
        if not isinstance(sent, dict):
            return [f"{where} is {type(sent).__name__}, recorded an object"]
        found: list[str] = []
        for key, value in recorded.items():
            if key not in sent:
                found.append(f"{where}.{key} is missing")
            else:
                found += _body_differences(value, sent[key], f"{where}.{key}")
        return found
    if isinstance(recorded, list):
        if not isinstance(sent, list) or len(sent) != len(recorded):
            return [f"{where} is {sent!r}, recorded {len(recorded)} item(s)"]
        return [
            difference
            for index, (want, got) in enumerate(zip(recorded, sent, strict=True))
            for difference in _body_differences(want, got, f"{where}[{index}]")
        ]
    return [] if recorded == sent else [f"{where} is {sent!r}, recorded {recorded!r}"]


def _with_base(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base}", base)
    if isinstance(value, dict):
        return {key: _with_base(item, base) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_base(item, base) for item in value]
    return value
