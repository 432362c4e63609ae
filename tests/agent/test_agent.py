"""The agent as a process on the real control plane: pushes applied, drift reverted with an
alert, deletions restored, suspend honoured, leader failover, crash recovery, an unreachable
source, and invalid Apps refused by the API server."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.agent.conftest import WEBHOOK_SECRET, app_condition, apply_yaml, source_and_app, wait_for
from tests.conftest import GitRepo, Kubectl
from tests.sync.manifests import configmap, deployment

ALERT_KEY = b"alert-hmac-key"


def configmap_data(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str] | None:
    obj = kubectl.get("configmap", name, namespace)
    return obj.get("data") if obj else None


def signed(body: bytes) -> dict[str, str]:
    return {
        "X-Tether-Signature": "sha256="
        + hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


class Receiver:
    """A real HTTP server that records the alerts it is sent."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()


def test_a_pushed_commit_is_applied_and_webhooks_are_verified(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("cm.yaml", configmap("settings", level="info")).commit("first")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    agent = start_agent()
    wait_for(
        lambda: configmap_data(kubectl, namespace, "settings") == {"level": "info"},
        60,
        "first sync",
    )
    wait_for(
        lambda: (app_condition(kubectl, namespace, "web", "Ready") or {}).get("status") == "True",
        30,
        "Ready",
    )

    commit = repo.write("cm.yaml", configmap("settings", level="debug")).commit("second")
    body = json.dumps({"url": str(repo.root)}).encode()
    refused = httpx.post(
        f"{agent.url}/hooks/generic", content=body, headers={"X-Tether-Signature": "sha256=bad"}
    )
    assert refused.status_code == 401
    assert httpx.post(f"{agent.url}/hooks/generic", content=body).status_code == 401
    accepted = httpx.post(f"{agent.url}/hooks/generic", content=body, headers=signed(body))
    assert accepted.status_code == 202 and accepted.json()["sources"] == [f"{namespace}/repo"]
    wait_for(
        lambda: configmap_data(kubectl, namespace, "settings") == {"level": "debug"},
        30,
        "pushed commit applied",
    )
    wait_for(
        lambda: (
            kubectl.get("apps.tether.dev", "web", namespace)["status"].get("lastAppliedRevision")
            == commit
        ),
        30,
        "revision recorded",
    )
    metrics = httpx.get(f"{agent.url}/metrics").text
    assert f'tether_syncs_total{{app="{namespace}/web",result="succeeded"}}' in metrics
    assert "tether_git_fetch_duration_seconds" in metrics


def test_hand_edit_is_reverted_and_alerted(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    receiver = Receiver()
    try:
        repo.write("cm.yaml", configmap("settings", level="info")).write(
            "d.yaml", deployment("api", replicas=1)
        ).commit()
        kubectl(
            "create",
            "secret",
            "generic",
            "alert-hook",
            "-n",
            namespace,
            f"--from-literal=hmacKey={ALERT_KEY.decode()}",
        )
        apply_yaml(
            kubectl,
            source_and_app(namespace, str(repo.root))
            + f"""---
apiVersion: tether.dev/v1alpha1
kind: AlertProvider
metadata: {{name: hook, namespace: {namespace}}}
spec: {{type: webhook, url: "{receiver.url}", secretRef: {{name: alert-hook}}, events: [DriftDetected, DriftCorrected]}}
""",
        )
        agent = start_agent()
        wait_for(
            lambda: (
                (app_condition(kubectl, namespace, "web", "Ready") or {}).get("status") == "True"
            ),
            60,
            "Ready",
        )
        kubectl("patch", "-n", namespace, "configmap/settings", "-p", '{"data":{"level":"hacked"}}')
        kubectl("scale", "-n", namespace, "deployment/api", "--replicas=3")
        wait_for(
            lambda: configmap_data(kubectl, namespace, "settings") == {"level": "info"},
            30,
            "configmap restored",
        )
        wait_for(
            lambda: kubectl.get("deployment", "api", namespace)["spec"]["replicas"] == 1,
            30,
            "replicas restored",
        )

        def configmap_drift_alerted() -> bool:
            # the Deployment's alerts may come first: wait for the ConfigMap's own
            events = receiver.events()
            return any(e["event"] == "DriftCorrected" for e in events) and any(
                e["event"] == "DriftDetected" and "data.level" in e["details"].get("fields", "")
                for e in events
            )

        with contextlib.suppress(AssertionError):  # the assertion below says what came instead
            wait_for(configmap_drift_alerted, 30, "alerts")
        detected = [e for e in receiver.events() if e["event"] == "DriftDetected"]
        assert any("data.level" in e["details"].get("fields", "") for e in detected), (
            f"alerts: {receiver.events()}\nagent log tail:\n{agent.log.read_text()[-6000:]}"
        )
        assert any(e["event"] == "DriftCorrected" for e in receiver.events()), receiver.events()
        for headers, body in receiver.received:
            expected = "sha256=" + hmac.new(ALERT_KEY, body, hashlib.sha256).hexdigest()
            assert headers["X-Tether-Signature"] == expected
        events = kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            "involvedObject.kind=App",
            "-o",
            "json",
        ).stdout
        assert {"DriftDetected", "DriftCorrected"} <= {
            e["reason"] for e in json.loads(events)["items"]
        }
    finally:
        receiver.close()


def test_a_deleted_object_comes_back(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("cm.yaml", configmap("settings", level="info")).commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    start_agent()
    first = wait_for(lambda: kubectl.get("configmap", "settings", namespace), 60, "created")
    kubectl("delete", "configmap", "settings", "-n", namespace)
    back = wait_for(lambda: kubectl.get("configmap", "settings", namespace), 30, "recreated")
    assert back["metadata"]["uid"] != first["metadata"]["uid"] and back["data"] == {"level": "info"}


def test_a_suspended_app_is_left_alone(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl, cli
) -> None:
    repo.write("cm.yaml", configmap("settings", level="info")).commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    start_agent()
    wait_for(
        lambda: configmap_data(kubectl, namespace, "settings") == {"level": "info"}, 60, "created"
    )
    code, _, err = cli(
        "suspend", "app", "web", "-n", namespace, f"--kubeconfig={kubectl.kubeconfig}"
    )
    assert code == 0, err
    wait_for(
        lambda: (
            (app_condition(kubectl, namespace, "web", "Ready") or {}).get("reason") == "Suspended"
        ),
        30,
        "suspended",
    )
    kubectl("patch", "-n", namespace, "configmap/settings", "-p", '{"data":{"level":"manual"}}')
    wait_for(
        lambda: (app_condition(kubectl, namespace, "web", "Drifted") or {}).get("status") == "True",
        30,
        "drift reported",
    )
    assert configmap_data(kubectl, namespace, "settings") == {"level": "manual"}
    code, _, _ = cli("resume", "app", "web", "-n", namespace, f"--kubeconfig={kubectl.kubeconfig}")
    assert code == 0
    wait_for(
        lambda: configmap_data(kubectl, namespace, "settings") == {"level": "info"},
        30,
        "restored after resume",
    )


def test_two_agents_one_leader_and_failover(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    repo.write("cm.yaml", configmap("settings", level="one")).commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    first = start_agent("agent-a")
    wait_for(
        lambda: configmap_data(kubectl, namespace, "settings") == {"level": "one"}, 60, "first sync"
    )
    second = start_agent("agent-b")
    lease = wait_for(lambda: kubectl.get("lease", "tether-agent", namespace), 10, "lease")
    assert lease["spec"]["holderIdentity"] == "agent-a"
    assert "tether_leader 0.0" in httpx.get(f"{second.url}/metrics").text
    first.kill()
    wait_for(
        lambda: (
            kubectl.get("lease", "tether-agent", namespace)["spec"]["holderIdentity"] == "agent-b"
        ),
        30,
        "takeover",
    )
    repo.write("cm.yaml", configmap("settings", level="two")).commit()
    body = json.dumps({"url": str(repo.root)}).encode()
    assert (
        httpx.post(f"{second.url}/hooks/generic", content=body, headers=signed(body)).status_code
        == 202
    )
    wait_for(
        lambda: configmap_data(kubectl, namespace, "settings") == {"level": "two"},
        30,
        "new leader applies",
    )


def test_killed_mid_sync_converges_on_restart(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    for i in range(150):
        repo.write(f"cm-{i:03d}.yaml", configmap(f"cm-{i:03d}", index=str(i)))
    repo.commit("many objects")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    agent = start_agent("crashy")

    def some_created() -> bool:
        out = kubectl(
            "get", "configmaps", "-n", namespace, "-l", "tether.dev/app", "-o", "name"
        ).stdout.split()
        return len(out) > 0

    wait_for(some_created, 60, "the sync to start writing")
    agent.kill()
    start_agent("recovered")

    def converged() -> bool:
        names = kubectl(
            "get", "configmaps", "-n", namespace, "-l", "tether.dev/app", "-o", "name"
        ).stdout.split()
        return len(names) == 150

    wait_for(converged, 60, "all 150 objects")
    wait_for(
        lambda: (app_condition(kubectl, namespace, "web", "Ready") or {}).get("status") == "True",
        30,
        "Ready",
    )
    parents = kubectl(
        "get",
        "configmaps",
        "-n",
        "tether-system",
        "-l",
        f"tether.dev/app={namespace}.web",
        "-o",
        "name",
    ).stdout.split()
    assert parents == [f"configmap/{namespace}.web"]


def test_unreachable_source_keeps_last_good_revision(
    start_agent, repo: GitRepo, namespace: str, kubectl: Kubectl, tmp_path
) -> None:
    commit = repo.write("cm.yaml", configmap("settings", level="info")).commit()
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root)))
    agent = start_agent()
    wait_for(
        lambda: (
            (kubectl.get("apps.tether.dev", "web", namespace).get("status") or {}).get(
                "lastAppliedRevision"
            )
            == commit
        ),
        60,
        "synced",
    )
    shutil.move(repo.root, tmp_path / "moved-away")
    body = json.dumps({"url": str(repo.root)}).encode()
    httpx.post(f"{agent.url}/hooks/generic", content=body, headers=signed(body))

    def source_failed() -> dict | None:
        source = kubectl.get("gitsources.tether.dev", "repo", namespace) or {}
        ready = next(
            (
                c
                for c in (source.get("status") or {}).get("conditions") or []
                if c["type"] == "Ready"
            ),
            {},
        )
        return ready if ready.get("status") == "False" else None

    ready = wait_for(source_failed, 30, "source failure condition")
    assert ready["reason"] == "FetchFailed" and str(repo.root) in ready["message"]
    condition = wait_for(
        lambda: app_condition(kubectl, namespace, "web", "SourceReady"), 30, "app condition"
    )
    assert condition["status"] == "False"
    app = kubectl.get("apps.tether.dev", "web", namespace)
    assert app["status"]["lastAppliedRevision"] == commit
    assert configmap_data(kubectl, namespace, "settings") == {"level": "info"}


def test_an_invalid_app_is_refused_by_the_api_server(
    tether_crds, namespace: str, kubectl: Kubectl
) -> None:
    result = apply_yaml(
        kubectl,
        f"""apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: bad, namespace: {namespace}}}
spec:
  sourceRef: {{name: repo}}
  path: apps/web
  syncPolicy: {{interval: 5 minutes}}
""",
        check=False,
    )
    assert result.returncode != 0
    assert "spec.syncPolicy.interval" in result.stderr and "should match" in result.stderr
    missing = apply_yaml(
        kubectl,
        f"apiVersion: tether.dev/v1alpha1\nkind: App\nmetadata: {{name: bad2, namespace: {namespace}}}\nspec: {{path: x}}\n",
        check=False,
    )
    assert missing.returncode != 0 and "sourceRef" in missing.stderr
