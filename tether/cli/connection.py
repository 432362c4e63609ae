"""Which cluster a command talks to: kubectl's rules, plus the running dev cluster as a last
resort so a first-time user needs no kubeconfig at all."""

from __future__ import annotations

import os
from pathlib import Path

from tether.cluster import kubeconfig
from tether.cluster.kubeconfig import Connection


def connect(kubeconfig_path: str | None, context: str | None) -> Connection:
    """kubectl's rules, plus a fallback to the default dev cluster when nothing else is set."""
    if kubeconfig_path is None and not os.environ.get("KUBECONFIG"):
        from tether.devcluster.controlplane import DevCluster

        default = Path.home() / ".kube" / "config"
        dev = DevCluster().kubeconfig_path
        if not default.is_file() and dev.is_file():
            kubeconfig_path = str(dev)
    return kubeconfig.load(kubeconfig_path, context)
