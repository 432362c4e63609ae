"""Governance: checking a GitOps repository before it is merged, and laying one out.

    lint(root, LintSettings(...)) -> Report          ``tether lint``
    scaffold.plan(InitSpec) / scaffold.write(...)      ``tether init``
    schemas.update(connection, cache)                  ``tether lint --update-schemas``

This layer sits beside ``tether.reconcile``: it composes the pieces (``render`` to build
overlays, ``policy`` for the checks, ``source`` for git, ``cluster`` for schemas and the
``--cluster`` dry-run) and never decides a rule itself. See ``docs/lint.md``.
"""

from tether.governance.lint import lint
from tether.governance.settings import LintSettings

__all__ = ["LintSettings", "lint"]
