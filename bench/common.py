"""What the agent benchmarks share: installing the CRDs, the identity Apps are applied as, and
starting an agent process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tether.agent import crds
from tether.agent.settings import DEFAULT_SERVICE_ACCOUNT
from tether.devcluster.provision import ensure_binary


def install_crds(kubectl: str, kubeconfig: Path) -> None:
    """Apply Tether's CRDs and wait until the API server serves them."""
    base = [kubectl, f"--kubeconfig={kubeconfig}"]
    subprocess.run(
        [*base, "apply", "--server-side", "-f", "-"],
        input=yaml.safe_dump_all(crds.ALL),
        text=True,
        check=True,
        capture_output=True,
    )
    names = [f"crd/{c['metadata']['name']}" for c in crds.ALL]
    subprocess.run(
        [*base, "wait", "--for=condition=Established", *names], check=True, capture_output=True
    )


def provision_deployer(kubeconfig: Path, namespace: str) -> None:
    """``tether-deployer`` in ``namespace``, bound to cluster-admin: the identity the agent
    applies the benchmark's Apps as (docs/tenancy.md); the 35-kind app's CRDs need the
    cluster-wide rights, through a Project (``scale.source_and_app``)."""
    manifest = f"""apiVersion: v1
kind: ServiceAccount
metadata: {{name: {DEFAULT_SERVICE_ACCOUNT}, namespace: {namespace}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {namespace}-{DEFAULT_SERVICE_ACCOUNT}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects: [{{kind: ServiceAccount, name: {DEFAULT_SERVICE_ACCOUNT}, namespace: {namespace}}}]
"""
    subprocess.run(
        [str(ensure_binary("kubectl")), f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
        input=manifest,
        text=True,
        check=True,
        capture_output=True,
    )


def start_agent(
    kubeconfig: Path,
    namespace: str,
    port: int,
    env: dict[str, str],
    webhook_secret: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``tether agent`` scoped to ``namespace`` (its Apps and its Lease), quiet."""
    provision_deployer(kubeconfig, namespace)
    argv = [
        sys.executable,
        "-m",
        "tether.cli.main",
        "agent",
        f"--kubeconfig={kubeconfig}",
        f"--namespace={namespace}",
        f"--lease-namespace={namespace}",
        f"--listen=127.0.0.1:{port}",
        "--log-level=warning",
        "--allow-local-sources",  # the benchmarks' sources are local repositories
    ]
    if webhook_secret is not None:
        argv.append(f"--webhook-secret-file={webhook_secret}")
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
