"""One reconcile pass: composes source, render, cluster, health and audit; maps errors to a
result once (see ``run.py``)."""
