"""The RBAC ``tether install --export`` grants the agent, checked by the API server itself
(``kubectl auth can-i`` as the agent's ServiceAccount): it cannot escalate, cannot read Secrets
outside its own namespace, cannot impersonate arbitrary users, groups or ServiceAccounts, and
can do what it needs."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import Cli, Kubectl
from tests.security.identity import AGENT_USER, apply_install
from tether.agent import install
from tether.devcluster.controlplane import DevCluster

OWN = install.NAMESPACE
AGENT = install.AGENT


@pytest.fixture(scope="module")
def installed(dev_cluster: DevCluster, kubectl: Kubectl) -> Kubectl:
    apply_install(kubectl)
    return kubectl


def can(kubectl: Kubectl, *args: str) -> bool:
    result = kubectl("auth", "can-i", *args, f"--as={AGENT_USER}", check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


REFUSED = [
    ("create", "clusterrolebindings"),
    ("create", "clusterroles"),
    ("create", "rolebindings", "-n", "team-a"),
    ("bind", "clusterroles"),
    ("escalate", "clusterroles"),
    ("get", "secrets", "-n", "team-a"),
    ("get", "secrets", "-n", "kube-system"),
    ("list", "secrets", "--all-namespaces"),
    ("watch", "secrets", "-n", OWN),
    ("list", "secrets", "-n", OWN),
    ("impersonate", "users/admin"),
    ("impersonate", "users/system:admin"),
    ("impersonate", "groups/system:masters"),
    ("impersonate", "userextras/scopes"),
    ("impersonate", "serviceaccounts/default", "-n", "team-a"),
    ("impersonate", "serviceaccounts/tether-agent", "-n", OWN),
    ("impersonate", "serviceaccounts/tether-platform", "-n", "team-a"),
    ("create", "deployments.apps", "-n", "team-a"),
    ("create", "configmaps", "-n", "team-a"),
    ("list", "configmaps", "--all-namespaces"),
    ("create", "namespaces"),
    ("delete", "apps.tether.dev", "-n", "team-a"),
    ("create", "apps.tether.dev", "-n", "team-a"),
    ("create", "pods/exec", "-n", OWN),
    ("create", "serviceaccounts/token", "-n", "team-a"),
    ("*", "*"),
]

ALLOWED = [
    ("list", "apps.tether.dev", "--all-namespaces"),
    ("watch", "gitsources.tether.dev", "--all-namespaces"),
    ("get", "projects.tether.dev", "-n", "team-a"),
    ("list", "alertproviders.tether.dev", "--all-namespaces"),
    ("patch", "apps.tether.dev", "--subresource=status", "-n", "team-a"),
    ("patch", "gitsources.tether.dev", "--subresource=status", "-n", "team-a"),
    ("update", "apps.tether.dev", "--subresource=finalizers", "-n", "team-a"),
    ("create", "events", "-n", "team-a"),
    ("get", "leases.coordination.k8s.io", "-n", OWN),
    ("update", "leases.coordination.k8s.io", "-n", OWN),
    ("create", "configmaps", "-n", OWN),
    ("get", "secrets", "-n", OWN),
    ("get", f"namespaces/{OWN}"),
    ("impersonate", "serviceaccounts/tether-deployer", "-n", "team-a"),
    ("impersonate", "serviceaccounts/web-deployer", "-n", "team-b"),
    ("get", "serviceaccounts/tether-deployer", "-n", "team-a"),
    ("impersonate", f"serviceaccounts/{install.PLATFORM_ACCOUNT}", "-n", OWN),
]


@pytest.mark.parametrize("request_", REFUSED, ids=" ".join)
def test_the_agent_may_not(installed: Kubectl, request_: tuple[str, ...]) -> None:
    assert not can(installed, *request_)


@pytest.mark.parametrize("request_", ALLOWED, ids=" ".join)
def test_the_agent_may(installed: Kubectl, request_: tuple[str, ...]) -> None:
    assert can(installed, *request_)


def test_secrets_elsewhere_need_an_explicit_binding(installed: Kubectl, namespace: str) -> None:
    """The one way to let the agent read a team's Secrets (GitSource credentials, decryption
    keys, alert URLs): a RoleBinding of ``tether-agent-secrets`` in that namespace only."""
    assert not can(installed, "get", "secrets", "-n", namespace)
    installed(
        "create",
        "rolebinding",
        "tether-agent-secrets",
        "-n",
        namespace,
        f"--clusterrole={install.SECRETS_ROLE}",
        f"--serviceaccount={OWN}:{install.AGENT}",
    )
    assert can(installed, "get", "secrets", "-n", namespace)
    assert not can(installed, "list", "secrets", "-n", namespace)
    assert not can(installed, "get", "secrets", "-n", "kube-system")


def test_no_rule_of_the_agent_grants_everything() -> None:
    """No wildcard anywhere in what the agent itself is bound to."""
    objects = install.manifests()
    agent_roles = {
        o["roleRef"]["name"]
        for o in objects
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and o["subjects"][0]["name"] == install.AGENT
    }
    rules = [
        rule
        for o in objects
        if o["kind"] in ("Role", "ClusterRole") and o["metadata"]["name"] in agent_roles
        for rule in o["rules"]
    ]
    assert rules and agent_roles == {install.AGENT}
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule


def test_install_lists_the_deployer_names_it_may_impersonate(cli: Cli) -> None:
    code, out, err = cli(
        "install", "--export", "--deployer-name", "team-deployer", "--deployer-name", "web-ci"
    )
    assert code == 0, err
    objects = list(yaml.safe_load_all(out))
    role = next(o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == AGENT)
    impersonation = [r for r in role["rules"] if "impersonate" in r["verbs"]]
    assert impersonation == [
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["impersonate", "get"],
            "resourceNames": ["team-deployer", "web-ci"],
        }
    ]
    agent = next(o for o in objects if o["kind"] == "Deployment")
    args = agent["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--default-service-account=team-deployer" in args


@pytest.mark.parametrize("flag", ["--deployer-name", "--default-service-account"])
def test_a_name_that_is_no_service_account_exits_2(cli: Cli, flag: str) -> None:
    command = ["install", "--export"] if flag == "--deployer-name" else ["agent"]
    code, _, err = cli(*command, flag, "Team A")
    assert code == 2 and f"{flag} 'Team A' is not a ServiceAccount name" in err
