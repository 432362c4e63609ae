"""The Prometheus provider: one instant query per measurement, over Prometheus' HTTP API.

``GET {address}/api/v1/query?query=...`` at the moment of the measurement. What the metric's
conditions see as ``result``:

    instant vector   the list of its sample values, as numbers: ``result[0] >= 0.95``
    scalar           the number
    string           the string

An instant vector with no sample, or whose samples are all NaN (a ratio of two rates over no
traffic is 0/0), and a NaN scalar, are an empty result: the metric's ``emptyResult`` choice says
what they count as. A range vector (``rate(x[5m])`` without an aggregation is fine, ``x[5m]``
alone is not) is refused as an error: conditions want one value per series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tether.analysis.http import request_json
from tether.analysis.measurement import Empty
from tether.analysis.provider import Header, MeasurementError

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class PrometheusProvider:
    """An instant query against one Prometheus server."""

    address: str
    query: str
    headers: Sequence[Header] = ()
    timeout: float = DEFAULT_TIMEOUT

    @property
    def kind(self) -> str:
        return "prometheus"

    async def measure(self) -> object | Empty:
        url = self.address.rstrip("/") + "/api/v1/query"
        answer = await request_json(
            "GET", url, headers=self.headers, params={"query": self.query}, timeout=self.timeout
        )
        return _result(answer, f"Prometheus at {self.address}")


def _result(answer: Any, where: str) -> object | Empty:
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error", "no error given") if isinstance(answer, dict) else answer
        raise MeasurementError(f"{where} refused the query: {error}")
    data = answer.get("data") or {}
    kind, result = data.get("resultType"), data.get("result") or []
    if kind == "vector":
        values = [_number(sample.get("value", [None, "NaN"])[1]) for sample in result or []]
        if not values:
            return Empty("the query matched no series")
        if all(math.isnan(value) for value in values):
            return Empty("every sample is NaN: a ratio over no traffic?")
        return values
    if kind == "scalar":
        value = _number(result[1])
        return Empty("the scalar is NaN") if math.isnan(value) else value
    if kind == "string":
        return str(result[1])
    raise MeasurementError(
        f"{where} answered a {kind}; an instant query must give a vector or a scalar "
        "(aggregate a range vector, as in sum(rate(x[1m])))"
    )


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise MeasurementError(f"Prometheus gave {text!r} where a number was expected") from None
