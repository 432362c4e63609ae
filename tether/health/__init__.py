"""Health of live objects, with kstatus semantics: one small pure function per kind.

    assess(ref, live)        -> ObjectHealth   one object; live is None when it does not exist
    assess_all([(ref, live)]) -> HealthReport  many objects; the report is the worst of them

Statuses, least to most severe: Healthy < Progressing < Missing < Degraded < Unknown (see
``tether.core.health``). This package is pure: the caller fetches live objects, nothing here
does I/O. The rules per kind are listed in ``docs/health.md``.
"""

from tether.health._assess import assess, assess_all

__all__ = ["assess", "assess_all"]
