"""Progressive delivery above one reconcile pass: canary, blue-green, rollback, quarantine.

Resumable state machines kept in the App's status and audited (see docs/delivery.md and
docs/rollback.md). Rollback: ``rollback.abort`` puts the last good render back with no Git
round trip, ``quarantine`` keeps the bad (commit, render digest) out of auto-sync until the
head renders something else, ``revert`` opens the revert pull request and sets the failing
commit status through ``tether.forge``.
"""
