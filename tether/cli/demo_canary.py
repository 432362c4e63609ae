"""The demo's ending: a canary that fails its analysis and is rolled back.

A local Gitea (``tether.devcluster.gitea``) holds a small repository, ``web``: a Deployment, its
Service and an AnalysisTemplate whose one metric is read from a loopback web endpoint the demo
serves (it answers an error rate of 50 %). The App delivers ``web`` as a canary: 25 % of the
replicas, then the analysis. The first version is adopted as stable; the second one's canary
fails the analysis, is aborted and rolled back: stable restored, the commit quarantined, a
failing commit status and a revert pull request in Gitea, whose URL the demo prints.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tether.cli.demo_agent import DemoError
from tether.devcluster.gitea import LocalGitea
from tether.source.workspace import commit_all, init_repository

WEB = "web"
WEB_SOURCE = "web-repo"
FORGE_SECRET_NAME = "forge-token"  # noqa: S105 (a Secret's name; its key token holds it)
ERROR_RATE = 0.5  # what the demo's metric endpoint answers: half of the requests fail
CANARY_TIMEOUT = 240.0
Kubectl = Callable[..., str]


class ErrorRateEndpoint:
    """``GET /error-rate`` on 127.0.0.1 answering ``{"errorRate": ERROR_RATE}``: the signal the
    canary's analysis reads (a stand-in for the service's own metrics)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"errorRate": ERROR_RATE}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/error-rate"

    def start(self) -> ErrorRateEndpoint:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def web_files(version: str, metric_url: str) -> dict[str, str]:
    """The ``web`` repository's files at ``version``."""
    deployment = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {WEB}}}
spec:
  replicas: 4
  selector: {{matchLabels: {{app: {WEB}}}}}
  template:
    metadata: {{labels: {{app: {WEB}}}}}
    spec:
      tolerations: [{{operator: Exists}}]
      containers: [{{name: {WEB}, image: "registry.example/web:{version}"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {WEB}}}
spec:
  selector: {{app: {WEB}}}
  ports: [{{port: 80}}]
"""
    template = f"""apiVersion: tether.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: error-rate}}
spec:
  metrics:
    - name: error-rate
      interval: 1s
      count: 2
      successCondition: result < 0.1
      provider:
        web: {{url: "{metric_url}", jsonPath: "$.errorRate"}}
"""
    return {"web/deployment.yaml": deployment, "web/analysis.yaml": template}


def web_app(namespace: str, project: str, destination: str, clone_url: str) -> str:
    """The GitSource (with its forge) and the App delivering ``web`` as a canary."""
    return f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: {WEB_SOURCE}, namespace: {namespace}}}
spec:
  url: {clone_url}
  interval: 2s
  forge: {{kind: gitea, secretRef: {{name: {FORGE_SECRET_NAME}}}}}
---
apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: {WEB}, namespace: {namespace}}}
spec:
  project: {project}
  sourceRef: {{name: {WEB_SOURCE}}}
  path: web
  destination: {{namespace: {destination}}}
  syncPolicy: {{automated: true, prune: true, interval: 5s}}
  healthTimeout: 60s
  delivery:
    - target: {{kind: Deployment, name: {WEB}}}
      onFailure: rollback
      canary:
        steps:
          - setWeight: 25
          - analysis: {{templates: [{{templateName: error-rate}}]}}
          - setWeight: 100
"""


class WebRepository:
    """The ``web`` repository: a working copy in ``directory``, pushed to Gitea."""

    def __init__(self, gitea: LocalGitea, directory: Path) -> None:
        self.gitea = gitea
        self.directory = directory
        self.owner = gitea.admin.username

    @property
    def clone_url(self) -> str:
        return f"{self.gitea.url}/{self.owner}/{WEB}.git"

    def create(self) -> None:
        response = httpx.post(
            f"{self.gitea.url}/api/v1/user/repos",
            json={"name": WEB, "default_branch": "main", "auto_init": False},
            headers={"Authorization": f"token {self.gitea.admin.token}"},
            timeout=30,
        )
        if response.status_code != 201:
            raise DemoError(
                f"Gitea at {self.gitea.url} refused to create the repository {WEB}: "
                f"HTTP {response.status_code}; its log: {self.gitea.log_path}"
            )
        shutil.rmtree(self.directory, ignore_errors=True)
        init_repository(self.directory, "main")

    def commit_and_push(self, files: dict[str, str], message: str) -> str:
        for path, text in files.items():
            target = self.directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        commit = commit_all(self.directory, message)
        header = f"http.extraHeader=Authorization: token {self.gitea.admin.token}"
        pushed = subprocess.run(
            ["git", "-C", str(self.directory), "-c", header, "push", "-q", self.clone_url, "main"],
            capture_output=True,
            text=True,
            check=False,
        )
        if pushed.returncode != 0:  # git's message: the token is in a header, never in it
            raise DemoError(f"git push to {self.clone_url} failed: {pushed.stderr.strip()}")
        return commit


def wait_for_app(
    kubectl: Kubectl,
    namespace: str,
    check: Callable[[dict[str, Any]], Any],
    what: str,
    guard: Callable[[], None],
) -> Any:
    """Poll the App ``web``'s status until ``check`` returns something; a DemoError saying
    where it stood after CANARY_TIMEOUT seconds."""
    deadline = time.monotonic() + CANARY_TIMEOUT
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        guard()
        found = kubectl("get", "apps.tether.dev", WEB, "-n", namespace, "-o", "json")
        status = dict(json.loads(found).get("status") or {})
        result = check(status)
        if result:
            return result
        time.sleep(1)
    delivery = json.dumps(status.get("delivery") or {})[:600]
    raise DemoError(
        f"waited {CANARY_TIMEOUT:.0f}s for {what} of App {namespace}/{WEB}; its rollout: "
        f"{delivery}; see `tether events --for app/{WEB} -n {namespace}`"
    )


def rollout_phase(status: dict[str, Any]) -> str:
    return str(((status.get("delivery") or {}).get(f"Deployment/{WEB}") or {}).get("phase", ""))


def revert_url(status: dict[str, Any]) -> str | None:
    """The revert pull request's URL once the rollback has opened it."""
    for entry in status.get("quarantine") or []:
        url = (entry.get("pullRequest") or {}).get("url")
        if url:
            return str(url)
    return None
