"""``tether demo``: the agent's loop on a laptop in about a minute.

Starts the local control plane (or uses ``--kubeconfig``), installs Tether's CRDs with
``tether install``, turns ``examples/gitops`` into a Git repository and starts ``tether agent``
as a background process. A GitSource and an App hand the repository to the agent. Then a commit
is pushed and announced with a signed webhook, as a Git server would, and the agent applies it;
someone scales a Deployment by hand and the agent puts it back; ``tether events`` and
``tether get apps`` show what happened. Last, a canary that fails its analysis
(``demo_canary.py``): a local Gitea holds a second repository, its canary's error rate is read
from a loopback endpoint that answers 50 %, and the agent aborts it, rolls it back and opens a
revert pull request whose URL is printed. The agent is stopped cleanly and a summary printed.

Every step prints what a person would type. Every wait is bounded and, when it runs out, says
what it was waiting for (see ``demo_agent.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from tether.cli import demo_canary as canary
from tether.cli import output
from tether.cli.agent import events as events_cmd
from tether.cli.agent import get_apps, install_cmd
from tether.cli.demo_agent import BackgroundAgent, ClusterView, DemoError, HandEdit
from tether.cluster import kubeconfig as kubeconfigs
from tether.core.paths import cache_root
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.gitea import LocalGitea
from tether.devcluster.provision import TextLog, ensure_binary
from tether.errors import TetherError
from tether.source.workspace import commit_all, init_repository

APP = "guestbook"
APPS_NAMESPACE = "tether-demo"  # the GitSource and App live here; the agent watches only it
SOURCE = "gitops"
PATH = "apps/guestbook/overlays/dev"
NAMESPACE = "guestbook-dev"
DEPLOYER = "guestbook-deployer"  # the ServiceAccount the App is applied as
DEPLOYMENT = "guestbook"
BRANCH = "main"
AGENT_IDENTITY = "tether-demo"
HAND_EDIT_REPLICAS = 5
AGENT_EVENTS = ("Synced", "DriftDetected", "DriftCorrected")
FIRST_SYNC_TIMEOUT = 180.0
PUSH_TIMEOUT = 60.0
HAND_EDIT_TIMEOUT = 30.0
IDLE_TIMEOUT = 60.0
IDLE_QUIET = 1.5
EVENTS_TIMEOUT = 30.0
KUBECTL_TIMEOUT = "30s"


def examples_dir() -> Path:
    """``examples/gitops``: inside the installed package, or next to it in a source checkout."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[1] / "_examples" / "gitops",
        here.parents[2] / "examples" / "gitops",
    ):
        if candidate.is_dir():
            return candidate
    raise TetherError("the example repository examples/gitops is missing from this installation")


def default_workdir() -> Path:
    return cache_root() / "demo"


def app_manifest(repository: Path) -> str:
    """The objects that hand the repository to the agent: the identity the App is applied as
    (a ServiceAccount that may create its namespace and its three kinds), a Project naming it,
    a GitSource and an App."""
    return f"""apiVersion: v1
kind: ServiceAccount
metadata: {{name: {DEPLOYER}, namespace: {APPS_NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {DEPLOYER}}}
rules:
  - {{apiGroups: [""], resources: [namespaces], verbs: [get, list, watch, create, patch]}}
  - {{apiGroups: ["", apps], resources: [configmaps, services, deployments], verbs: ["*"]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {DEPLOYER}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {DEPLOYER}}}
subjects: [{{kind: ServiceAccount, name: {DEPLOYER}, namespace: {APPS_NAMESPACE}}}]
---
apiVersion: tether.dev/v1alpha1
kind: Project
metadata: {{name: {APP}, namespace: {APPS_NAMESPACE}}}
spec:
  destinations: [{NAMESPACE}]
  clusterScoped: true    # its Namespace
  kinds: {{allow: [Namespace, ConfigMap, Service, Deployment.apps]}}
  serviceAccountName: {DEPLOYER}   # the App is applied as it (docs/tenancy.md)
---
apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata:
  name: {SOURCE}
  namespace: {APPS_NAMESPACE}
spec:
  url: {repository.as_uri()}
  ref: {{branch: {BRANCH}}}
  interval: 1m          # a signed push webhook makes it fetch at once
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata:
  name: {APP}
  namespace: {APPS_NAMESPACE}
spec:
  project: {APP}
  sourceRef: {{name: {SOURCE}}}
  path: {PATH}
  destination: {{namespace: {NAMESPACE}}}
  syncPolicy: {{automated: true, prune: true, selfHeal: true}}
  healthTimeout: 2m
"""


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _step(title: str, *commands: str) -> None:
    output.out.print()
    output.out.print(Rule(Text(title, style="bold")))
    for command in commands:
        output.out.print(f"$ {command}", style="dim")


def _done(message: str) -> None:
    output.out.print(output.styled("[green]✓[/] {}", message))


def _show(text: str) -> None:
    """What a command printed, as it printed it (no Rich markup)."""
    output.out.print(text, highlight=False)


@dataclass
class Outcome:
    """What the demo measured, for the summary."""

    first_commit: str = ""
    first_seconds: float = 0.0
    push_commit: str = ""
    push_seconds: float = 0.0
    hand_edit: HandEdit | None = None
    events: dict[str, int] | None = None
    agent_pid: int = 0
    canary_commit: str = ""
    revert_url: str = ""


class Demo:
    """One run of the story against one cluster, with its files in ``workdir``."""

    def __init__(self, kubeconfig_path: Path, workdir: Path) -> None:
        self.kubeconfig_path = kubeconfig_path
        self.workdir = workdir
        self.repository = workdir / SOURCE
        self.kubectl_binary = str(ensure_binary("kubectl"))
        self.agent = BackgroundAgent(kubeconfig_path, APPS_NAMESPACE, workdir, AGENT_IDENTITY)
        self.view = ClusterView(kubeconfigs.load(kubeconfig_path), self.agent.check)
        self.started_at = datetime.now(UTC)
        self.outcome = Outcome()
        self.gitea = LocalGitea(workdir / "gitea")
        self.endpoint = canary.ErrorRateEndpoint()

    def run(self) -> Outcome:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # each run its own audit trail: an earlier run's last good render names a commit this
        # run's repositories do not have (a rollback would restore it, its revert could not)
        for stale in self.workdir.glob("audit.db*"):
            stale.unlink()
        self._install()
        first = self._make_repository()
        try:
            self._start_agent()
            self._hand_over(first)
            self._push()
            self._hand_edit()
            self._show_events()
            self._failing_canary()
        except BaseException:
            self._stop_after_failure()
            raise
        finally:
            self.endpoint.stop()
            self.gitea.stop()
        self._stop_agent()
        return self.outcome

    # -- the steps ---------------------------------------------------------------------------

    def _install(self) -> None:
        _step("1. Install Tether's CRDs, namespace and RBAC", "tether install")
        install_cmd(kubeconfig=str(self.kubeconfig_path))
        output.out.print(
            "On a real cluster the agent runs as the Deployment above; this dev cluster's "
            "kwok nodes run no containers, so the demo starts the agent as a local process.",
            style="dim",
        )

    def _make_repository(self) -> str:
        _step(
            "2. A Git repository: examples/gitops",
            f"cp -r examples/gitops {self.repository} && cd {self.repository}",
            f"git init -b {BRANCH} && git add -A && git commit -m 'Add guestbook with a dev overlay'",
        )
        shutil.rmtree(self.repository, ignore_errors=True)
        shutil.copytree(examples_dir(), self.repository)
        init_repository(self.repository, BRANCH)
        commit = commit_all(self.repository, "Add guestbook with a dev overlay")
        output.out.print(f"commit {commit[:12]}")
        return commit

    def _start_agent(self) -> None:
        shown = " ".join(a for a in self.agent.argv if not a.startswith("--kubeconfig"))
        _step(
            "3. Start the agent in the background, watching one namespace",
            f"kubectl create namespace {APPS_NAMESPACE}",
        )
        # The namespace exists first so that the agent's Lease in it can be taken at once.
        exists = self._kubectl("get", "namespace", APPS_NAMESPACE, "--ignore-not-found", "-o=name")
        created = exists or self._kubectl("create", "namespace", APPS_NAMESPACE)
        _show(f"{created} already exists" if exists else created)
        output.out.print(f"$ tether {shown} > {self.agent.log_path} 2>&1 &", style="dim")
        self.agent.start()
        self.outcome.agent_pid = self.agent.pid
        _done(f"agent running (pid {self.agent.pid}) on {self.agent.url}")
        output.out.print(f"  its log: {self.agent.log_path}")

    def _hand_over(self, commit: str) -> None:
        manifest = self.workdir / "guestbook-app.yaml"
        manifest.write_text(app_manifest(self.repository))
        _step(
            "4. Hand the repository to the agent: its identity, a Project, a GitSource and an App",
            f"cat {manifest}",
        )
        output.out.print(Syntax(manifest.read_text(), "yaml", theme="ansi_dark"))
        output.out.print(f"$ kubectl apply -f {manifest}", style="dim")
        started = time.monotonic()
        _show(self._kubectl("apply", "-f", str(manifest)))
        seconds = self.view.wait_for_revision(
            APPS_NAMESPACE, APP, commit, FIRST_SYNC_TIMEOUT, started
        )
        self.outcome.first_commit, self.outcome.first_seconds = commit, seconds
        _done(
            f"the agent applied {commit[:12]} {_duration(seconds)} after the App was created "
            "(fetch, render, apply)"
        )
        self._wait_until_idle()
        output.out.print(f"$ tether get apps -n {APPS_NAMESPACE}", style="dim")
        get_apps(namespace=APPS_NAMESPACE, kubeconfig=str(self.kubeconfig_path))

    def _wait_until_idle(self) -> None:
        self.view.wait_until_idle(APPS_NAMESPACE, APP, IDLE_QUIET, IDLE_TIMEOUT)

    def _push(self) -> None:
        message = "Turn dev logging up to trace"
        _step(
            "5. Push a change; the Git server's webhook tells the agent",
            f"sed -i 's/LOG_LEVEL: debug/LOG_LEVEL: trace/' {PATH}/settings.yaml",
            f"git commit -am '{message}'",
            f"curl -X POST {self.agent.url}/hooks/github -H 'X-Hub-Signature-256: sha256=…' "
            '-d \'{"repository": {"clone_url": …}}\'',
        )
        settings = self.repository / PATH / "settings.yaml"
        settings.write_text(settings.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"))
        commit = commit_all(self.repository, message)
        output.out.print(f"commit {commit[:12]}")
        started = time.monotonic()
        matched = self.agent.push_webhook(self.repository.as_uri(), commit, BRANCH)
        if not matched:
            raise DemoError(
                f"the agent accepted the webhook for {self.repository.as_uri()} but no GitSource "
                f"matched it; check GitSource {APPS_NAMESPACE}/{SOURCE} and {self.agent.log_path}"
            )
        output.out.print(f"webhook accepted: fetching {', '.join(matched)}")
        seconds = self.view.wait_for_revision(APPS_NAMESPACE, APP, commit, PUSH_TIMEOUT, started)
        self.outcome.push_commit, self.outcome.push_seconds = commit, seconds
        _done(f"push applied: {commit[:12]} is live {_duration(seconds)} after the webhook")
        jsonpath = "-o=jsonpath={.data.LOG_LEVEL}"
        output.out.print(
            f"$ kubectl -n {NAMESPACE} get configmap guestbook-settings '{jsonpath}'", style="dim"
        )
        _show(self._kubectl("-n", NAMESPACE, "get", "configmap", "guestbook-settings", jsonpath))

    def _hand_edit(self) -> None:
        scale = [
            "-n",
            NAMESPACE,
            "scale",
            f"deployment/{DEPLOYMENT}",
            f"--replicas={HAND_EDIT_REPLICAS}",
        ]
        self._wait_until_idle()  # an edit racing a pass is settled quietly, not shown as drift
        _step("6. Someone edits the cluster by hand", f"kubectl {' '.join(scale)}")
        printed, edit = self.view.hand_edit(
            self._kubectl_argv(*scale), NAMESPACE, DEPLOYMENT, HAND_EDIT_REPLICAS, HAND_EDIT_TIMEOUT
        )
        self.outcome.hand_edit = edit
        _show(printed)
        output.out.print(
            f"a watch on the Deployment saw replicas {edit.edited_to} (the hand edit), "
            f"then {edit.restored_to} again (the agent, from Git)"
        )
        _done(f"hand edit undone in {_duration(edit.seconds)}")
        output.out.print(f"$ kubectl -n {NAMESPACE} get deployment {DEPLOYMENT}", style="dim")
        _show(self._kubectl("-n", NAMESPACE, "get", "deployment", DEPLOYMENT))

    def _show_events(self) -> None:
        for_app = f"app/{APP}"
        _step(
            "7. What the agent recorded",
            f"tether events --for {for_app} -n {APPS_NAMESPACE}",
        )
        self.outcome.events = self.view.wait_for_events(
            APPS_NAMESPACE, APP, AGENT_EVENTS, self.started_at, EVENTS_TIMEOUT
        )
        events_cmd(
            for_object=for_app, namespace=APPS_NAMESPACE, kubeconfig=str(self.kubeconfig_path)
        )
        output.out.print(f"$ tether get apps -n {APPS_NAMESPACE}", style="dim")
        get_apps(namespace=APPS_NAMESPACE, kubeconfig=str(self.kubeconfig_path))

    def _failing_canary(self) -> None:
        """A canary that fails its analysis, rolled back, with its revert pull request."""
        _step(
            "8. A second repository in a local Git forge (Gitea), with a canary's analysis",
            "gitea web &   # on 127.0.0.1, a throwaway admin and token",
            f"git push {{gitea}}/tether-admin/{canary.WEB}.git main",
        )
        shutil.rmtree(self.gitea.directory, ignore_errors=True)
        self.gitea.start(TextLog())
        self.endpoint.start()
        output.out.print(f"Gitea on {self.gitea.url}; its log: {self.gitea.log_path}")
        output.out.print(
            f"the analysis reads {self.endpoint.url}: it answers "
            f"{{\"errorRate\": {canary.ERROR_RATE}}} (the demo's stand-in for the app's metrics)"
        )
        repository = canary.WebRepository(self.gitea, self.workdir / canary.WEB)
        repository.create()
        v1 = repository.commit_and_push(
            canary.web_files("v1", self.endpoint.url), "web v1 with its error-rate analysis"
        )
        output.out.print(f"commit {v1[:12]} pushed to {repository.clone_url}")
        manifest = self.workdir / "web-app.yaml"
        manifest.write_text(canary.web_app(APPS_NAMESPACE, APP, NAMESPACE, repository.clone_url))
        _step(
            "9. An App delivering web as a canary: 25 % of the replicas, then the analysis",
            f"kubectl -n {APPS_NAMESPACE} create secret generic {canary.FORGE_SECRET_NAME} "
            "--from-literal=token=…",
            f"kubectl apply -f {manifest}",
        )
        self._kubectl("-n", APPS_NAMESPACE, "delete", "secret", canary.FORGE_SECRET_NAME,
                      "--ignore-not-found")  # fmt: skip
        token = f"--from-literal=token={self.gitea.admin.token}"
        self._kubectl(
            "-n", APPS_NAMESPACE, "create", "secret", "generic", canary.FORGE_SECRET_NAME, token
        )
        # an App web left by an earlier run goes first: its quarantine named that run's commits
        self._kubectl(
            "-n", APPS_NAMESPACE, "delete", "apps.tether.dev", canary.WEB, "--ignore-not-found"
        )
        output.out.print(Syntax(manifest.read_text(), "yaml", theme="ansi_dark"))
        _show(self._kubectl("apply", "-f", str(manifest)))

        def v1_serves(status: dict[str, object]) -> bool:
            return (
                status.get("lastAppliedRevision") == v1
                and status.get("health") == "Healthy"
                and canary.rollout_phase(status) == "Promoted"
            )

        canary.wait_for_app(self._kubectl, APPS_NAMESPACE, v1_serves, "v1", self.agent.check)
        _done(f"web v1 ({v1[:12]}) serves, healthy: the first version is adopted as stable")
        _step(
            "10. Push v2: its canary's error rate is 50 %, the analysis fails, it is rolled back",
            "git commit -am 'web v2' && git push",
        )
        v2 = repository.commit_and_push(canary.web_files("v2", self.endpoint.url), "web v2")
        output.out.print(f"commit {v2[:12]} pushed")
        url = canary.wait_for_app(
            self._kubectl, APPS_NAMESPACE, canary.revert_url, "the rollback", self.agent.check
        )
        self.outcome.canary_commit, self.outcome.revert_url = v2, str(url)
        image = self._kubectl(
            "-n", NAMESPACE, "get", "deployment", canary.WEB,
            "-o=jsonpath={.spec.template.spec.containers[0].image}",
        )  # fmt: skip
        _done(f"canary {v2[:12]} aborted and rolled back: {canary.WEB} serves {image} again")
        output.out.print(f"$ tether events --for app/{canary.WEB} -n {APPS_NAMESPACE}", style="dim")
        events_cmd(
            for_object=f"app/{canary.WEB}",
            namespace=APPS_NAMESPACE,
            kubeconfig=str(self.kubeconfig_path),
        )
        _done(f"revert pull request: {url}")

    def _stop_agent(self) -> None:
        _step("11. Stop the agent", f"kill -TERM {self.agent.pid}")
        code = self.agent.stop()
        if code != 0:
            raise DemoError(
                f"the agent exited with code {code} on SIGTERM instead of 0; "
                f"its log: {self.agent.log_path}"
            )
        _done("agent stopped cleanly (exit 0)")

    def _stop_after_failure(self) -> None:
        try:
            self.agent.stop()
        except TetherError as error:
            output.err.print(str(error), style="red")
        tail = self.agent.log_tail()
        if tail:
            output.err.print(f"The agent's log ({self.agent.log_path}) ends with:", style="bold")
            output.err.print(tail, highlight=False)

    # -- kubectl -----------------------------------------------------------------------------

    def _kubectl_argv(self, *args: str) -> list[str]:
        return [
            self.kubectl_binary,
            f"--kubeconfig={self.kubeconfig_path}",
            f"--request-timeout={KUBECTL_TIMEOUT}",
            *args,
        ]

    def _kubectl(self, *args: str) -> str:
        result = subprocess.run(
            self._kubectl_argv(*args), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()


def _summary(outcome: Outcome, agent_log: Path) -> Table:
    table = Table(title="What the agent did", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "First sync",
        f"{outcome.first_commit[:12]} applied {_duration(outcome.first_seconds)} after the App was created",
    )
    table.add_row(
        "Push",
        f"{outcome.push_commit[:12]} applied {_duration(outcome.push_seconds)} after the webhook",
    )
    if outcome.hand_edit:
        edit = outcome.hand_edit
        table.add_row(
            "Hand edit",
            f"replicas {edit.restored_to} → {edit.edited_to} put back to {edit.restored_to} "
            f"in {_duration(edit.seconds)}",
        )
    if outcome.events:
        counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(outcome.events.items()))
        table.add_row("Events", counts)
    if outcome.revert_url:
        table.add_row(
            "Failed canary",
            f"{outcome.canary_commit[:12]} rolled back; revert pull request {outcome.revert_url}",
        )
    table.add_row("Agent", f"pid {outcome.agent_pid}, stopped cleanly; log {agent_log}")
    return table


def run_demo(
    cluster_name: str = "tether", kubeconfig: str | None = None, workdir: Path | None = None
) -> int:
    """The whole story; 0 when every step happened, a DemoError (exit 2) naming the one that
    did not."""
    if kubeconfig:
        kubeconfig_path = Path(kubeconfig)
        cluster_note = f"The cluster at {kubeconfig_path} was left as it is."
    else:
        output.out.print(
            Rule(
                Text(
                    f"0. A local control plane: tether dev-cluster up --name {cluster_name}",
                    style="bold",
                )
            )
        )
        kubeconfig_path = DevCluster(cluster_name).up(TextLog())
        cluster_note = (
            f"The dev cluster keeps running: export KUBECONFIG={kubeconfig_path}\n"
            f"Stop it with: tether dev-cluster down --name {cluster_name}"
        )
    output.out.print(f"$ export KUBECONFIG={kubeconfig_path}", style="dim")
    demo = Demo(kubeconfig_path, workdir or default_workdir())
    outcome = demo.run()
    output.out.print()
    output.out.print(_summary(outcome, demo.agent.log_path))
    output.out.print(
        output.styled(
            "\n[bold green]Demo complete:[/] the agent applied 2 commits from Git and undid 1 "
            "hand edit, "
            "and rolled back 1 failing canary."
        )
    )
    output.out.print(cluster_note)
    return 0
