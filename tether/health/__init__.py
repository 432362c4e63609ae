"""Health of live objects, with kstatus semantics.

    assess(ref, live, policy, now)        -> ObjectHealth   live is None when it does not exist
    assess_all([(ref, live)], policy, now) -> HealthReport  the report is the worst of them
    HealthPolicy().with_checks(entries, origin)             users' CEL checks on top of the rules

Statuses, least to most severe: Healthy < Progressing < Missing < Degraded < Unknown (see
``tether.core.health``). This package is pure: the caller fetches live objects, nothing here
does I/O. Built-in kinds have Python rules; custom resources of common projects have rules as
data (``rules/*.yaml``); users add CEL checks. The rules per kind are listed in
``docs/health.md``.
"""

from tether.health._assess import DEFAULT_POLICY, HealthPolicy, assess, assess_all
from tether.health._declarative import InvalidHealthCheck
from tether.health._observed import DEFAULT_GRACE

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_POLICY",
    "HealthPolicy",
    "InvalidHealthCheck",
    "assess",
    "assess_all",
]
