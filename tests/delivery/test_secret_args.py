"""Secret template arguments (``valueFrom.secretKeyRef``): read as the App's identity from the
App's namespace when the analysis starts, used by the provider, and never written anywhere.

The agent test runs a canary whose web metric sends the secret in a header and in the URL's
query to a loopback server that checks it (and, as a careless server would, echoes it back);
the canary fails on its error rate and is rolled back. The value is then looked for in every
place the rollout wrote: the App's status, the audit database, the namespace's Events, the
alerts sent, the agent's log and the abort's evidence (the revert pull request's body).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.agent.conftest import apply_yaml, wait_for
from tests.conftest import GitRepo, Kubectl
from tests.delivery.agentkit import rollout, waited
from tests.delivery.test_canary_agent import audit_rows, deploy, events, image
from tests.delivery.test_job_metrics_agent import rolled_out
from tests.notify.receivers import Recorder
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load
from tether.core import Manifest
from tether.delivery.analysiscluster import SecretArgs
from tether.delivery.canary import AnalysisWiring, run_step_analysis
from tether.delivery.model import AnalysisStep
from tether.devcluster.controlplane import DevCluster


class TokenChecker:
    """A loopback JSON endpoint: whether the request's X-Token header and ``token`` query
    parameter are the expected token, an error rate, and the header echoed back."""

    def __init__(self, token: str, error_rate: float) -> None:
        self.token, self.error_rate = token, error_rate
        self.checks: list[bool] = []
        checker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                given = self.headers.get("X-Token", "")
                query = parse_qs(urlsplit(self.path).query).get("token", [""])[0]
                authorized = given == checker.token and query == checker.token
                checker.checks.append(authorized)
                body = json.dumps(
                    {"authorized": authorized, "errorRate": checker.error_rate, "echo": given}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/health"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


@pytest.fixture
def checker(token: str) -> Iterator[TokenChecker]:
    server = TokenChecker(token, error_rate=0.5)
    yield server
    server.stop()


def health_template(url: str) -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: smoke}}
spec:
  args:
    - name: token
      valueFrom: {{secretKeyRef: {{name: health-token, key: token}}}}
  metrics:
    - name: health
      successCondition: result.authorized && result.errorRate < 0.1
      provider:
        web:
          url: "{url}?token={{{{args.token}}}}"
          headers: [{{key: X-Token, value: "{{{{args.token}}}}"}}]
"""


def everything_written(kubectl: Kubectl, namespace: str, tmp: Path, alerts: Recorder) -> str:
    """The App, the audit database, the Events, the alerts and the agents' logs, as text."""
    app = kubectl("get", "apps.tether.dev", "web", "-n", namespace, "-o", "json").stdout
    with sqlite3.connect(tmp / "audit.db") as connection:
        audit = "\n".join(connection.iterdump())
    listed = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    sent = "\n".join(r.body.decode(errors="replace") for r in alerts.received)
    logs = "".join(p.read_text(errors="replace") for p in tmp.glob("agent-*.log"))
    return "\n".join((app, audit, listed, sent, logs))


def test_a_secret_argument_is_used_by_the_metric_and_written_nowhere(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    tmp_path: Path,
    token: str,
    checker: TokenChecker,
) -> None:
    alerts = Recorder().start()
    try:
        kubectl("create", "secret", "generic", "health-token", "-n", namespace,
                f"--from-literal=token={token}")  # fmt: skip
        apply_yaml(
            kubectl,
            f"""apiVersion: tether.dev/v1alpha1
kind: AlertProvider
metadata: {{name: hook, namespace: {namespace}}}
spec: {{type: webhook, url: "{alerts.url}", events: [RolloutAborted]}}
""",
        )
        start_agent("agent-a")
        v1, commit = rolled_out(repo, kubectl, namespace, health_template(checker.url))
        # the rollback runs once the abort is recorded; watch for the evidence it is handed
        pending: list[str] = []

        def rolled_back() -> bool:
            app = kubectl.get("apps.tether.dev", "web", namespace) or {}
            waiting = (app.get("status") or {}).get("pendingRollback") or {}
            if waiting:
                pending.append(json.dumps(waiting))
            return "RolledBack" in events(kubectl, namespace)

        waited(kubectl, namespace, tmp_path, rolled_back, "the canary aborted and rolled back")
        wait_for(lambda: alerts.received, 60, "the RolloutAborted alert")
    finally:
        alerts.stop()

    # the metric got the secret, in the header and the URL, and the server accepted it
    assert checker.checks and all(checker.checks)
    current = rollout(kubectl, namespace)
    assert current["phase"] == "Aborted" and current["candidate"]["revision"] == commit
    (measured,) = audit_rows(tmp_path / "audit.db", "measurement")
    assert measured["value"] == {"authorized": True, "errorRate": 0.5, "echo": "***"}
    (abort,) = audit_rows(tmp_path / "audit.db", "abort")
    evidence = "\n".join(abort["evidence"])  # what the revert pull request's body quotes
    assert "health" in evidence and "***" in evidence
    wait_for(lambda: deploy(kubectl, namespace, "web-canary") is None, 60, "the canary removed")
    assert image(deploy(kubectl, namespace, "web")) == f"registry.example/web:{v1}"
    # and the value is nowhere the rollout wrote
    written = everything_written(kubectl, namespace, tmp_path, alerts)
    assert "health" in written and commit in written  # the search looks at the right things
    assert token not in written
    assert token not in evidence and not any(token in p for p in pending)


def _analysis_with(
    dev_cluster: DevCluster, namespace: str, template: str
) -> tuple[str, tuple[str, ...]]:
    async def run() -> tuple[str, tuple[str, ...]]:
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as client:
            wiring = AnalysisWiring(read_secret=SecretArgs(client, namespace).read)
            status = await run_step_analysis(
                0,
                AnalysisStep(("smoke",)),
                [Manifest(yaml.safe_load(template))],
                (),
                lambda _: None,
                wiring,
            )
            return status.phase, status.reasons

    return asyncio.run(run())


def test_a_missing_secret_or_key_is_an_error_naming_them_never_the_value(
    dev_cluster: DevCluster, kubectl: Kubectl, namespace: str, token: str
) -> None:
    template = health_template("http://127.0.0.1:9/health")
    phase, reasons = _analysis_with(dev_cluster, namespace, template)
    assert phase == "Error"
    (reason,) = reasons
    assert f"Secret {namespace}/health-token not found" in reason and "'token'" in reason

    kubectl("create", "secret", "generic", "health-token", "-n", namespace,
            f"--from-literal=other={token}")  # fmt: skip
    phase, reasons = _analysis_with(dev_cluster, namespace, template)
    (reason,) = reasons
    assert phase == "Error" and "has no key 'token' (its keys: other)" in reason
    assert token not in reason
