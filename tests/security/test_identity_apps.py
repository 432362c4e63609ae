"""Who Apps are applied as, with a real agent running under exactly the RBAC ``tether install
--export`` grants it (a token of its ServiceAccount): an App without a Project is applied as its
namespace's default ServiceAccount and kept in its namespace, by Tether's check and, with that
check switched off, by the API server; an App of a Project is applied as the Project's
ServiceAccount, and a missing ServiceAccount is named in a Ready=False condition, nothing
applied."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.agent.conftest import (
    AgentProcess,
    app_condition,
    app_ready,
    apply_yaml,
    source_and_app,
    wait_for,
)
from tests.conftest import GitRepo, Kubectl
from tests.security.identity import agent_kubeconfig, apply_install, bind
from tether.agent import install
from tether.agent.annotations import REQUESTED_ANNOTATION
from tether.agent.controller import Agent
from tether.agent.settings import DEFAULT_SERVICE_ACCOUNT, AgentSettings
from tether.cluster import kubeconfig
from tether.devcluster.controlplane import DevCluster


@pytest.fixture(scope="module")
def as_agent(
    dev_cluster: DevCluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig that is the agent's ServiceAccount, under the exported install's RBAC."""
    apply_install(kubectl)
    return agent_kubeconfig(kubectl, tmp_path_factory.mktemp("agent-identity"))


@pytest.fixture
def run_agent(
    as_agent: Path, namespace: str, tmp_path: Path
) -> Iterator[Callable[[], AgentProcess]]:
    """``tether agent`` as its own ServiceAccount, its Lease where the install allows it."""
    started: list[AgentProcess] = []

    def start() -> AgentProcess:
        agent = AgentProcess(
            as_agent,
            namespace,
            tmp_path,
            f"identity-{namespace}",
            f"--lease-namespace={install.NAMESPACE}",
        )
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


class InProcessAgent:
    """The agent's parts run in this process with settings no flag sets (Tether's tenancy
    check off), under the same RBAC: what the API server alone refuses."""

    def __init__(self, kubeconfig_path: Path, settings: AgentSettings) -> None:
        self.connection = kubeconfig.load(str(kubeconfig_path), None)
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(30), "the in-process agent did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self._lead())
        self.ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self.task)
        self.loop.close()

    async def _lead(self) -> None:
        agent = Agent(self.connection, self.settings)
        try:
            await agent.lead()
        finally:
            await agent.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)


def escapes(namespace: str, other: str) -> dict[str, str]:
    """Three ways out of an App's namespace: a cluster-scoped ClusterRole, a new Namespace, and
    a Deployment in another namespace."""
    return {
        "clusterrole.yaml": f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {namespace}-escape}}
rules: [{{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}}]
""",
        "namespace.yaml": f"""apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}-new}}
""",
        "deployment.yaml": f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: elsewhere, namespace: {other}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: elsewhere}}}}
  template:
    metadata: {{labels: {{app: elsewhere}}}}
    spec: {{containers: [{{name: c, image: registry.example/none:1}}]}}
""",
    }


def configmap(name: str, namespace: str = "", level: str = "info") -> str:
    where = f", namespace: {namespace}" if namespace else ""
    return f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}{where}}}
data: {{level: {level}}}
"""


def not_ready(kubectl: Kubectl, namespace: str, reason: str) -> dict | None:
    ready = app_condition(kubectl, namespace, "web", "Ready") or {}
    return ready if ready.get("status") == "False" and ready.get("reason") == reason else None


def nothing_escaped(kubectl: Kubectl, namespace: str, other: str) -> bool:
    return (
        kubectl.get("clusterrole", f"{namespace}-escape") is None
        and kubectl.get("namespace", f"{namespace}-new") is None
        and kubectl.get("deployment", "elsewhere", other) is None
    )


def fetch_and_sync(kubectl: Kubectl, namespace: str, token: str) -> None:
    """``tether reconcile app web --with-source``: fetch the GitSource now, then sync."""
    for kind, name in (("gitsources.tether.dev", "repo"), ("apps.tether.dev", "web")):
        kubectl(
            "annotate",
            kind,
            name,
            "-n",
            namespace,
            f"{REQUESTED_ANNOTATION}={token}",
            "--overwrite",
        )


def other_namespace(kubectl: Kubectl, namespace: str) -> str:
    other = f"{namespace}-other"
    kubectl("create", "namespace", other)
    return other


def test_an_app_without_a_project_is_applied_and_watched_as_its_namespace_default(
    run_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    """The agent itself may not create a ConfigMap in the namespace (test_identity_rbac): the
    App is applied, and its hand edit seen and put back, only as ``tether-deployer``."""
    kubectl("create", "serviceaccount", DEFAULT_SERVICE_ACCOUNT, "-n", namespace)
    bind(kubectl, DEFAULT_SERVICE_ACCOUNT, namespace, "edit", namespace)
    repo.write("settings.yaml", configmap("settings")).commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    run_agent()
    wait_for(lambda: app_ready(kubectl, namespace), 90, "the App to be Ready")
    kubectl("patch", "configmap", "settings", "-n", namespace, "-p", '{"data":{"level":"x"}}')
    wait_for(
        lambda: (
            (kubectl.get("configmap", "settings", namespace) or {}).get("data") == {"level": "info"}
        ),
        60,
        "the hand edit put back",
    )
    # a second revision is planned, applied and pruned as the identity too
    commit = repo.write("settings.yaml", configmap("renamed")).commit("rename")
    fetch_and_sync(kubectl, namespace, commit)
    wait_for(lambda: app_ready(kubectl, namespace, revision=commit), 90, "the second revision")
    assert kubectl.get("configmap", "renamed", namespace) is not None
    assert kubectl.get("configmap", "settings", namespace) is None


def test_an_app_without_a_project_stays_in_its_namespace_by_tethers_check(
    run_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    """Even where the default identity's RBAC would allow it (the other namespace), Tether's
    check refuses each escape before anything is dry-run."""
    other = other_namespace(kubectl, namespace)
    kubectl("create", "serviceaccount", DEFAULT_SERVICE_ACCOUNT, "-n", namespace)
    bind(kubectl, DEFAULT_SERVICE_ACCOUNT, namespace, "edit", namespace)
    bind(kubectl, DEFAULT_SERVICE_ACCOUNT, namespace, "edit", other)
    for path, text in {**escapes(namespace, other), "ok.yaml": configmap("ok")}.items():
        repo.write(path, text)
    repo.commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    run_agent()
    ready = wait_for(lambda: not_ready(kubectl, namespace, "SyncFailed"), 90, "the refusal")
    message = ready["message"]
    assert "refused by tenancy rules" in message
    assert f"ClusterRole.rbac.authorization.k8s.io/{namespace}-escape" in message
    assert f"Namespace/{namespace}-new" in message
    assert f"Deployment.apps/{other}/elsewhere" in message
    assert "may not create cluster-scoped objects" in message
    assert nothing_escaped(kubectl, namespace, other)
    assert kubectl.get("configmap", "ok", namespace) is None  # nothing at all was applied


def test_with_tethers_check_off_the_api_server_refuses_the_same_escapes(
    as_agent: Path,
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    other = other_namespace(kubectl, namespace)
    kubectl("create", "serviceaccount", DEFAULT_SERVICE_ACCOUNT, "-n", namespace)
    bind(kubectl, DEFAULT_SERVICE_ACCOUNT, namespace, "edit", namespace)
    for path, text in {**escapes(namespace, other), "ok.yaml": configmap("ok")}.items():
        repo.write(path, text)
    repo.commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    settings = AgentSettings(
        identity=f"unchecked-{namespace}",
        namespace=namespace,
        audit_url=str(tmp_path / "audit.db"),
        tenancy_check=False,
        allow_local_sources=True,  # the test repository is a local path
    )
    agent = InProcessAgent(as_agent, settings)
    try:
        ready = wait_for(lambda: not_ready(kubectl, namespace, "Forbidden"), 90, "the refusal")
    finally:
        agent.stop()
    message = ready["message"]
    assert "tenancy rules" not in message  # not Tether's check: the API server's RBAC
    user = f"system:serviceaccount:{namespace}:{DEFAULT_SERVICE_ACCOUNT}"
    assert message.count(user) >= 3, message
    assert f'clusterroles.rbac.authorization.k8s.io "{namespace}-escape" is forbidden' in message
    assert f'namespaces "{namespace}-new" is forbidden' in message
    assert f'in the namespace "{other}"' in message
    assert f"ServiceAccount {namespace}/{DEFAULT_SERVICE_ACCOUNT}" in message  # what to do
    assert nothing_escaped(kubectl, namespace, other)
    assert kubectl.get("configmap", "ok", namespace) is None


def test_an_app_of_a_project_is_applied_as_its_service_account_and_stops_without_it(
    run_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    target = other_namespace(kubectl, namespace)
    kubectl("create", "serviceaccount", "web-deployer", "-n", namespace)
    bind(kubectl, "web-deployer", namespace, "edit", target)
    repo.write("a.yaml", configmap("a")).commit()
    apply_yaml(
        kubectl,
        source_and_app(
            namespace,
            str(repo.root),
            extra=f"  project: web\n  destination: {{namespace: {target}}}\n",
        )
        + f"""---
apiVersion: tether.dev/v1alpha1
kind: Project
metadata: {{name: web, namespace: {namespace}}}
spec: {{destinations: ["{target}"], serviceAccountName: web-deployer}}
""",
    )
    run_agent()
    wait_for(lambda: app_ready(kubectl, namespace), 90, "the App to be Ready")
    assert kubectl.get("configmap", "a", target) is not None

    kubectl("delete", "serviceaccount", "web-deployer", "-n", namespace)
    commit = repo.write("b.yaml", configmap("b")).commit()
    fetch_and_sync(kubectl, namespace, commit)
    ready = wait_for(
        lambda: not_ready(kubectl, namespace, "ServiceAccountNotFound"), 90, "the condition"
    )
    message = ready["message"]
    assert f"ServiceAccount {namespace}/web-deployer" in message
    assert f"Project {namespace}/web" in message
    assert "does not exist" in message and "nothing was applied" in message
    assert "kubectl create serviceaccount web-deployer" in message
    status = kubectl.get("apps.tether.dev", "web", namespace)["status"]
    assert status["lastAttemptedRevision"] == commit != status["lastAppliedRevision"]
    assert kubectl.get("configmap", "b", target) is None
    assert kubectl.get("configmap", "a", target) is not None
