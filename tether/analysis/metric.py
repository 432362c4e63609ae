"""A metric ready to measure: its provider, conditions, limits and timing, in seconds.

Built by ``template.instantiate`` (arguments already substituted, conditions compiled), or
directly by code that has its own configuration. ``mask`` holds the secret values this metric was
given, so the runner hides them in every measurement it records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.analysis.conditions import Conditions
from tether.analysis.masking import Mask
from tether.analysis.provider import Provider
from tether.analysis.verdict import Limits


@dataclass(frozen=True)
class Metric:
    """One metric of an analysis."""

    name: str
    provider: Provider
    conditions: Conditions
    limits: Limits = field(default_factory=Limits)
    interval: float = 0.0  # seconds between two measurements
    initial_delay: float = 0.0  # seconds before the first
    mask: Mask = field(default_factory=Mask)
