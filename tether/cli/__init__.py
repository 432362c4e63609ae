"""The ``tether`` command line: entry points and output formatting only; the work is done by
``tether.reconcile`` and the pieces below it."""
