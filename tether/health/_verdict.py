"""The result of one rule, before it is tied to an object: a status and a short reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from tether.core import HealthStatus
from tether.health._fields import Fields


class Verdict(NamedTuple):
    status: HealthStatus
    message: str = ""


Check = Callable[[Fields], Verdict]
"""A rule for one kind: reads the live object, returns its health. Pure, no I/O."""


def healthy(message: str = "") -> Verdict:
    return Verdict(HealthStatus.HEALTHY, message)


def progressing(message: str) -> Verdict:
    return Verdict(HealthStatus.PROGRESSING, message)


def degraded(message: str) -> Verdict:
    return Verdict(HealthStatus.DEGRADED, message)


def unknown(message: str) -> Verdict:
    return Verdict(HealthStatus.UNKNOWN, message)


def detailed(head: str, detail: str) -> str:
    """``head: detail``, or just ``head`` when there is no detail."""
    return f"{head}: {detail}" if detail else head


def count(number: int, noun: str) -> str:
    """``1 pod``, ``3 pods``: a number and a regular English noun."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
