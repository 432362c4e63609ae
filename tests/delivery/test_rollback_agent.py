"""`tether rollback` against the agent as a process, a real control plane and a real Gitea.

One story, as a person lives it: a good version runs and is kept as the last good render; a bad
version goes out; Gitea goes down; `tether rollback` still restores the good version (no Git
round trip) and quarantines the bad one; once Gitea is back the revert pull request (with the
evidence) and the failing commit status appear, once; a commit that renders the bad version
again is skipped while auto-sync stays on; merging the revert through Gitea's API lifts the
quarantine without redeploying anything that should not be; every decision is in the audit
trail with who, why and the commit.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.conftest import (  # noqa: F401  (fixtures)
    AgentProcess,
    app_ready,
    apply_yaml,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.conftest import Kubectl
from tests.forge.conftest import ForgeRepo
from tests.hermetic import hermetic_git  # noqa: F401  (fixture)
from tether.audit import AuditStore
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.gitea import LocalGitea
from tether.forge import RepoRef

REASON = "checkout error rate 12% > 5% after v2"


@pytest.fixture(scope="module")
def own_gitea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGitea]:
    """A Gitea of this module's own: the test stops and starts it."""
    server = LocalGitea(tmp_path_factory.mktemp("gitea-rollback")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gitea_repo(own_gitea: LocalGitea, tmp_path: Path) -> ForgeRepo:
    """A fresh public repository in this module's Gitea, with a working copy on ``main``."""
    name = f"gitops-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{own_gitea.url}/api/v1/user/repos",
        json={"name": name, "default_branch": "main", "auto_init": False, "private": False},
        headers={"Authorization": f"token {own_gitea.admin.token}"},
        timeout=30,
    )
    assert response.status_code == 201, (
        f"{response.text}\ngitea log tail:\n{own_gitea.log_path.read_text()[-2000:]}"
    )
    work = tmp_path / name
    work.mkdir()
    forge_repo = ForgeRepo(own_gitea, RepoRef(own_gitea.admin.username, name), work)
    forge_repo.git("init", "-q", "-b", "main")
    forge_repo.git("config", "user.name", "Test Person")
    forge_repo.git("config", "user.email", "person@example.invalid")
    return forge_repo


def forge_token(kubectl: Kubectl, namespace: str, gitea: LocalGitea) -> None:
    """The Secret ``forge-token`` the GitSource's ``spec.forge.secretRef`` names: the token the
    agent opens pull requests and sets commit statuses with."""
    kubectl(
        "create", "secret", "generic", "forge-token", "-n", namespace,
        f"--from-literal=token={gitea.admin.token}",
    )  # fmt: skip


def web_config(version: str) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config}}
data: {{version: "{version}"}}
"""


EXTRA = """apiVersion: v1
kind: ConfigMap
metadata: {name: added-by-v2}
data: {feature: "on"}
"""


def objects(kubectl: Kubectl, namespace: str) -> tuple[str, str, bool]:
    """(web-config's version, its resourceVersion, whether added-by-v2 exists)."""
    found = kubectl.get("configmap", "web-config", namespace) or {}
    extra = kubectl.get("configmap", "added-by-v2", namespace) is not None
    return (
        (found.get("data") or {}).get("version", ""),
        found.get("metadata", {}).get("resourceVersion", ""),
        extra,
    )


def app_status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return (kubectl.get("apps.tether.dev", "web", namespace) or {}).get("status") or {}


def quarantine(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return list(app_status(kubectl, namespace).get("quarantine") or [])


def tether_cli(dev_cluster: DevCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            *args,
            f"--kubeconfig={dev_cluster.kubeconfig_path}",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )


def pulls(repo: ForgeRepo) -> list[dict[str, Any]]:
    response = repo.get("/pulls?state=all&limit=50")
    assert response.status_code == 200, response.text
    return list(response.json())


@dataclass
class Deployed:
    agents: list[AgentProcess]
    good: str
    bad: str
    app_key: str  # the app as the audit store names it
    audit: Path


def deploy_v1_then_v2(
    own_gitea: LocalGitea,
    repo: ForgeRepo,
    kubectl: Kubectl,
    namespace: str,
    start: Callable[..., AgentProcess],
    tmp_path: Path,
    replicas: int = 1,
) -> Deployed:
    """v1 applied and kept as the last good render, then v2 applied, by ``replicas`` agents."""
    good = repo.commit({"apps/web/config.yaml": web_config("v1"), "README.md": "hi\n"}, "web v1")
    repo.push()
    forge_token(kubectl, namespace, own_gitea)
    apply_yaml(
        kubectl,
        f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: repo, namespace: {namespace}}}
spec:
  url: {own_gitea.url}/{repo.ref}.git
  interval: 2s
  forge: {{kind: gitea, secretRef: {{name: forge-token}}}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: web, namespace: {namespace}}}
spec:
  sourceRef: {{name: repo}}
  path: apps/web
  syncPolicy: {{prune: true, interval: 4s}}
  healthTimeout: 30s
""",
    )
    agents = [start(f"agent-{n}") for n in range(replicas)]
    app_key = f"{namespace}.web"  # as the audit store names the app
    audit_path = tmp_path / "audit.db"

    def good_render_kept() -> bool:
        with AuditStore(str(audit_path)) as store:
            found = store.last_good_render(app_key)
        return found is not None and found.revision.commit == good

    wait_for(lambda: app_ready(kubectl, namespace, revision=good), 90, "v1 applied")
    wait_for(good_render_kept, 60, "the v1 render kept as the last good one")

    bad = repo.commit(
        {"apps/web/config.yaml": web_config("v2"), "apps/web/extra.yaml": EXTRA}, "web v2"
    )
    repo.push()
    wait_for(lambda: app_ready(kubectl, namespace, revision=bad), 90, "v2 applied")
    assert objects(kubectl, namespace)[0] == "v2"
    assert objects(kubectl, namespace)[2]

    return Deployed(agents, good, bad, app_key, audit_path)


def test_rollback_by_hand_with_gitea_down_then_revert_pr_then_lift(
    own_gitea: LocalGitea,
    gitea_repo: ForgeRepo,
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    start_agent: Callable[..., AgentProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = gitea_repo
    deployed = deploy_v1_then_v2(own_gitea, repo, kubectl, namespace, start_agent, tmp_path)
    good, bad, app_key = deployed.good, deployed.bad, deployed.app_key
    # Gitea (the Git server and the forge) goes down; the rollback needs neither
    own_gitea.stop()
    try:
        done = tether_cli(
            dev_cluster, "rollback", "web", "-n", namespace, "--reason", REASON, "--wait"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "pending" in done.stdout
        version, _, extra_left = objects(kubectl, namespace)
        assert version == "v1"  # stable is back, from the audit store
        assert extra_left  # a rollback prunes nothing; the revert's merge will
        [entry] = quarantine(kubectl, namespace)
        assert entry["revision"] == bad
        assert entry["stableRevision"] == good
        assert entry["pullRequestPending"] is True
        assert entry["commitStatusSet"] is False
        assert entry["by"] and entry["by"] != "unknown"
        assert pulls_while_down_are_unknown(own_gitea)
    finally:
        own_gitea.start()

    # Gitea is back: the pending revert and commit status are done by the agent, once
    def revert_opened() -> dict[str, Any] | None:
        entries = quarantine(kubectl, namespace)
        return entries[0] if entries and entries[0].get("pullRequest") else None

    entry = wait_for(revert_opened, 90, "the revert pull request to be opened")
    assert entry["commitStatusSet"] is True and entry["pullRequestPending"] is False
    opened = [p for p in pulls(repo) if p["head"]["ref"].startswith("tether/revert/")]
    assert len(opened) == 1
    pull = opened[0]
    assert pull["number"] == entry["pullRequest"]["number"]
    assert REASON in pull["body"] and bad[:12] in pull["body"]
    statuses = repo.get(f"/commits/{bad}/statuses").json()
    assert [s["status"] for s in statuses if s["context"] == "tether/delivery"] == ["failure"]

    # auto-sync is still on: a commit that renders the bad version again is skipped
    on_top = repo.commit({"README.md": "docs only\n"}, "docs")
    repo.push()
    wait_for(
        lambda: app_status(kubectl, namespace).get("lastAppliedRevision") == on_top,
        90,
        "the docs commit synced",
    )
    version, held_version, _ = objects(kubectl, namespace)
    assert version == "v1"
    assert len(quarantine(kubectl, namespace)) == 1
    assert len([p for p in pulls(repo) if p["head"]["ref"].startswith("tether/revert/")]) == 1

    # merging the revert through Gitea's API lifts the quarantine; v1 is not re-applied
    repo.merge(pull["number"])
    wait_for(lambda: not quarantine(kubectl, namespace), 90, "the quarantine to lift")
    wait_for(lambda: not objects(kubectl, namespace)[2], 60, "added-by-v2 pruned")
    version, resource_version, _ = objects(kubectl, namespace)
    assert version == "v1"
    assert resource_version == held_version  # not written again: nothing redeployed

    with AuditStore(str(deployed.audit)) as store:
        decisions = [r for r in store.delivery_history(app_key) if r.kind == "decision"]
    kinds = [d.data["decision"] for d in decisions]
    for kind in ("rollback", "quarantine", "revert-pending", "commit-status", "revert-opened",
                 "quarantine-lifted"):  # fmt: skip
        assert kind in kinds, kinds
    rollback = next(d for d in decisions if d.data["decision"] == "rollback")
    assert rollback.data["reason"] == REASON and rollback.revision == bad
    assert rollback.actor == entry["by"]
    assert rollback.data["stableRevision"] == good
    assert deployed.agents[0].healthy()


def test_the_leader_killed_while_the_revert_is_pending_the_other_replica_opens_it_once(
    own_gitea: LocalGitea,
    gitea_repo: ForgeRepo,
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    start_agent: Callable[..., AgentProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = gitea_repo
    deployed = deploy_v1_then_v2(
        own_gitea, repo, kubectl, namespace, start_agent, tmp_path, replicas=2
    )
    own_gitea.stop()
    try:
        done = tether_cli(
            dev_cluster, "rollback", "web", "-n", namespace, "--reason", REASON, "--wait"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert objects(kubectl, namespace)[0] == "v1"
        lease = kubectl.get("lease", "tether-agent", namespace) or {}
        holder = lease["spec"]["holderIdentity"]
        leader = next(a for a in deployed.agents if a.identity == holder)
        leader.kill()  # a crash, with the revert and the commit status still pending
    finally:
        own_gitea.start()

    def revert_opened() -> dict[str, Any] | None:
        entries = quarantine(kubectl, namespace)
        return entries[0] if entries and entries[0].get("pullRequest") else None

    entry = wait_for(revert_opened, 120, "the other replica to open the revert")
    assert entry["commitStatusSet"] is True
    assert [p["number"] for p in pulls(repo)] == [entry["pullRequest"]["number"]]
    assert objects(kubectl, namespace)[0] == "v1"  # the new leader keeps holding v2 back
    with AuditStore(str(deployed.audit)) as store:
        decisions = [r for r in store.delivery_history(deployed.app_key) if r.kind == "decision"]
    rollbacks = [d for d in decisions if d.data["decision"] == "rollback"]
    assert len(rollbacks) == 1  # the request was acted on once, not again by the new leader
    [opened] = [d for d in decisions if d.data["decision"] == "revert-opened"]
    assert opened.actor == f"agent/{next(a.identity for a in deployed.agents if a is not leader)}"


def pulls_while_down_are_unknown(gitea: LocalGitea) -> bool:
    """Gitea really is down while the rollback runs."""
    try:
        httpx.get(f"{gitea.url}/api/v1/version", timeout=2)
    except httpx.HTTPError:
        return True
    return False
