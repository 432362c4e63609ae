"""The web provider: an HTTP request to a service that answers JSON, and a JSON path into it.

GET, POST or PUT ``url`` with the given headers and body (a body on GET is refused when the
template is read). The answer must be a 2xx with a JSON body; ``jsonPath`` (the subset in
``jsonpath``) picks the value the conditions see as ``result``, the whole document without one.
A path that matches nothing, a JSON null and an empty list are an empty result. The exchange
is bounded by ``timeout`` seconds (10 by default, Argo Rollouts' ``timeoutSeconds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tether.analysis.http import request_json
from tether.analysis.jsonpath import NO_MATCH, JsonPath
from tether.analysis.measurement import Empty
from tether.analysis.provider import Header

DEFAULT_TIMEOUT = 10.0
METHODS = ("GET", "POST", "PUT")


@dataclass(frozen=True)
class WebProvider:
    """One HTTP endpoint that answers a JSON measurement."""

    url: str
    method: str = "GET"
    headers: Sequence[Header] = ()
    body: str | None = None
    json_path: JsonPath | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def kind(self) -> str:
        return "web"

    async def measure(self) -> object | Empty:
        document = await request_json(
            self.method, self.url, headers=self.headers, content=self.body, timeout=self.timeout
        )
        value: object = self.json_path.find(document) if self.json_path else document
        if value is NO_MATCH:
            return Empty(
                f"the JSON path {self.json_path.source if self.json_path else ''} matched nothing"
            )
        if value is None or value == []:
            return Empty(
                "the answer holds null" if value is None else "the answer is an empty list"
            )
        return value
