"""What a metric provider is: something that takes one measurement's value, asynchronously.

A provider answers a plain JSON value (judged by the metric's conditions), an ``Empty`` (judged
by the metric's ``emptyResult`` choice), or raises ``MeasurementError`` when it could not take the
measurement at all (unreachable, timed out, an answer that is not what was asked): that becomes
an Error measurement, counted against ``consecutiveErrorLimit``; ``MeasurementRefused`` (it can
never be taken as configured) ends the analysis instead. Messages name the provider and
its address; the metric masks secret values in them before they are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tether.analysis.measurement import Empty


class MeasurementError(Exception):
    """A measurement could not be taken; the message says where and why."""


class MeasurementRefused(MeasurementError):
    """A measurement can never be taken as configured (the API server refused the analysis'
    identity): not an Error measurement to retry but the end of the analysis
    (``run.run_analysis`` lets it through to its caller)."""


class Provider(Protocol):
    """One metric's source of values."""

    @property
    def kind(self) -> str:
        """``prometheus``, ``web`` or ``job``."""
        ...

    async def measure(self) -> object | Empty:
        """One value; MeasurementError when none could be taken."""
        ...


@dataclass(frozen=True)
class Header:
    """One HTTP header a provider sends; a secret one is masked wherever it could show."""

    name: str
    value: str
    secret: bool = False
