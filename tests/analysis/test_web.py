"""The web provider against a loopback aiohttp server: JSON paths, bad answers, slow ones,
secrets kept out of measurements."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tether.analysis import ArgValue, Phase, Verdict, read_template, run_analysis, run_metric
from tether.analysis.masking import HIDDEN

TOKEN = "s3cr3t-token-value"


def _app(received: list[dict[str, Any]]) -> web.Application:
    async def measurement(request: web.Request) -> web.Response:
        received.append({"headers": dict(request.headers), "body": await request.text()})
        return web.json_response({"data": {"ok": True, "successPercent": 0.97, "p99": [120, 340]}})

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"error": "database down"}, status=500)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({"late": True})

    async def echo(request: web.Request) -> web.Response:
        received.append({"headers": dict(request.headers), "body": await request.text()})
        return web.json_response(
            {"seen": request.headers.get("Authorization", ""), "query": request.query_string}
        )

    app = web.Application()
    app.router.add_get("/measurement", measurement)
    app.router.add_post("/measurement", measurement)
    app.router.add_get("/html", html)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    app.router.add_get("/echo", echo)
    return app


def serve(test: Callable[[str, list[dict[str, Any]]], Awaitable[None]]) -> None:
    """Run ``test(base_url, received)`` with the server up on 127.0.0.1."""

    async def main() -> None:
        received: list[dict[str, Any]] = []
        runner = web.AppRunner(_app(received), shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            await test(f"http://127.0.0.1:{port}", received)
        finally:
            await runner.cleanup()

    asyncio.run(main())


def _template(
    metric: dict[str, Any], args: list[dict[str, Any]] | None = None, name: str = "web"
) -> Any:
    return read_template(
        {
            "apiVersion": "tether.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "web-check"},
            "spec": {"args": args or [], "metrics": [{"name": name, **metric}]},
        }
    )


def test_a_json_path_picks_the_value_the_condition_judges():
    async def test(url: str, received: list[dict[str, Any]]) -> None:
        metric = _template(
            {
                "successCondition": "result.ok && result.successPercent >= 0.90",
                "provider": {"web": {"url": f"{url}/measurement", "jsonPath": "{$.data}"}},
            }
        ).instantiate()[0]
        result = await run_metric(metric)
        assert result.assessment.verdict is Verdict.SUCCESSFUL
        assert result.measurements[0].value["successPercent"] == 0.97

        element = _template(
            {
                "successCondition": "result < 500",
                "provider": {"web": {"url": f"{url}/measurement", "jsonPath": "$.data.p99[-1]"}},
            }
        ).instantiate()[0]
        assert (await run_metric(element)).measurements[0].value == 340

    serve(test)


def test_a_post_sends_its_json_body_and_headers():
    async def test(url: str, received: list[dict[str, Any]]) -> None:
        metric = _template(
            {
                "successCondition": "result == true",
                "provider": {
                    "web": {
                        "url": f"{url}/measurement",
                        "method": "POST",
                        "headers": [{"key": "Content-Type", "value": "application/json"}],
                        "jsonBody": {"service": "{{args.service}}"},
                        "jsonPath": "$.data.ok",
                    }
                },
            },
            args=[{"name": "service"}],
        ).instantiate({"service": "shop"})[0]
        result = await run_metric(metric)
        assert result.measurements[0].phase is Phase.SUCCESSFUL
        assert json.loads(received[0]["body"]) == {"service": "shop"}
        assert received[0]["headers"]["Content-Type"] == "application/json"

    serve(test)


def test_a_path_that_matches_nothing_is_an_empty_result():
    async def test(url: str, received: list[dict[str, Any]]) -> None:
        metric = _template(
            {
                "successCondition": "result > 0",
                "emptyResult": "failure",
                "provider": {"web": {"url": f"{url}/measurement", "jsonPath": "$.data.missing"}},
            }
        ).instantiate()[0]
        measurement = (await run_metric(metric)).measurements[0]
        assert measurement.phase is Phase.FAILED
        assert "the JSON path $.data.missing matched nothing" in measurement.message

    serve(test)


def test_a_body_that_is_not_json_and_a_500_are_error_measurements():
    async def test(url: str, received: list[dict[str, Any]]) -> None:
        for path, expected in [
            (
                "/html",
                "the answer is not JSON (text/html; charset=utf-8): <html>maintenance</html>",
            ),
            ("/broken", 'answered 500 Internal Server Error: {"error": "database down"}'),
        ]:
            metric = _template(
                {
                    "successCondition": "result.ok",
                    "consecutiveErrorLimit": 0,
                    "provider": {"web": {"url": f"{url}{path}"}},
                }
            ).instantiate()[0]
            result = await run_metric(metric)
            assert result.assessment.verdict is Verdict.ERROR
            assert result.measurements[0].phase is Phase.ERROR
            assert result.measurements[0].message == f"GET {url}{path}: {expected}"

    serve(test)


def test_a_slow_receiver_is_cut_off_at_the_timeout():
    async def test(url: str, received: list[dict[str, Any]]) -> None:
        metric = _template(
            {
                "successCondition": "result.late",
                "consecutiveErrorLimit": 0,
                "provider": {"web": {"url": f"{url}/slow", "timeoutSeconds": 0.5}},
            }
        ).instantiate()[0]
        # The bound: the analysis ends with an error measurement, long before the server's 30 s.
        result = await asyncio.wait_for(run_metric(metric), 20)
        assert result.measurements[0].phase is Phase.ERROR
        assert result.measurements[0].message == f"GET {url}/slow: no answer within 0.5 s"

    serve(test)


def test_secret_arguments_and_headers_never_reach_a_measurement():
    async def test(url: str, received: list[dict[str, Any]]) -> None:
        template = _template(
            {
                "successCondition": "result.seen != ''",
                "provider": {
                    "web": {
                        "url": f"{url}/echo?token={{{{args.api-token}}}}",
                        "headers": [
                            {"key": "Authorization", "value": "Bearer {{args.api-token}}"},
                            {"key": "X-Team-Key", "value": "team-key-123", "secret": True},
                        ],
                    }
                },
            },
            args=[{"name": "api-token", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}}],
        )
        metric = template.instantiate({"api-token": ArgValue(TOKEN, secret=True)})[0]
        down = _template(
            {
                "successCondition": "true",
                "consecutiveErrorLimit": 0,
                "provider": {"web": {"url": "http://127.0.0.1:9/x?token={{args.api-token}}"}},
            },
            args=[{"name": "api-token", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}}],
            name="down",
        ).instantiate({"api-token": TOKEN})[0]  # declared from a Secret: secret even as a str

        result = await run_analysis([down])
        echo = await run_metric(metric)

        assert received[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"  # it was sent
        assert received[0]["headers"]["X-Team-Key"] == "team-key-123"
        measurements = [*result.metrics[0].measurements, *echo.measurements]
        records = json.dumps([m.to_record() for m in measurements])
        assert TOKEN not in records
        assert "team-key-123" not in records
        echoed = echo.measurements[0].value
        assert echoed == {"seen": HIDDEN, "query": f"token={HIDDEN}"}
        assert (
            result.metrics[0]
            .measurements[0]
            .message.startswith(f"GET http://127.0.0.1:9/x?token={HIDDEN}: could not connect")
        )

    serve(test)
