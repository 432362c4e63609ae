"""Helpers of the identity tests: the exported install applied to the dev cluster, and a
kubeconfig that authenticates as the agent's ServiceAccount (so the agent runs under exactly the
RBAC ``tether install --export`` grants it)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import Kubectl
from tether.agent import install

AGENT_USER = f"system:serviceaccount:{install.NAMESPACE}:{install.AGENT}"
# The names the install lets the agent impersonate in these tests: the default, and a Project's.
DEPLOYERS = ("tether-deployer", "web-deployer")


def apply_install(kubectl: Kubectl) -> None:
    """``tether install --export --deployer-name …`` applied, less the Deployment (the agent
    runs here as a process, as that ServiceAccount)."""
    objects = [o for o in install.manifests(deployers=DEPLOYERS) if o["kind"] != "Deployment"]
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=tether-install",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects),
    )
    crds = [
        f"crd/{o['metadata']['name']}" for o in objects if o["kind"] == "CustomResourceDefinition"
    ]
    kubectl("wait", "--for=condition=Established", *crds, "--timeout=60s")


def agent_kubeconfig(kubectl: Kubectl, directory: Path) -> Path:
    """A kubeconfig of the dev cluster whose user is the agent's ServiceAccount (a token from
    the TokenRequest API, as a pod of the agent would have)."""
    token = kubectl(
        "create", "token", install.AGENT, "-n", install.NAMESPACE, "--duration=2h"
    ).stdout.strip()
    config = yaml.safe_load(kubectl.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path = directory / "agent-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def bind(kubectl: Kubectl, account: str, namespace: str, role: str, where: str) -> None:
    """ServiceAccount ``namespace/account``, bound to ClusterRole ``role`` in ``where``."""
    kubectl(
        "create",
        "rolebinding",
        f"{account}-{role}-{namespace}",
        "-n",
        where,
        f"--clusterrole={role}",
        f"--serviceaccount={namespace}:{account}",
    )
