"""Webhook gates that cannot answer: retried until the step's timeout, then Inconclusive.

Real HTTP on loopback: a receiver that is down (nothing listens on its port) and comes up while
the gate retries, one that answers 5xx then a clear 4xx, and one slower than the step's
timeout; first through ``ask_gate``, then through the agent run as a process. The calls recorded in status (``GateStatus``: Calling, attempts, first call) are what a
replica that takes over goes on from; the machine turns an Inconclusive gate into a pause and an
alert, never a pass.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.agent.conftest import apply_yaml, source_and_app, wait_for
from tests.conftest import GitRepo, Kubectl
from tests.delivery.agentkit import ROLLOUT_TIMEOUT, rollout, waited
from tests.delivery.signals import new_version
from tests.delivery.test_canary_agent import audit_rows, delivery, deploy, deployment, events
from tests.delivery.test_machine import HEAD, canary, seen
from tests.notify.receivers import Recorder, free_port
from tether.delivery.gates import GateCall, ask_gate
from tether.delivery.machine import Abort, Alert, CallWebhook, advance
from tether.delivery.model import GateOutcome, GateStatus, Phase, RolloutRequest, Webhook

CALL = GateCall("team/shop", "Deployment/web", HEAD.revision, 0, 25)


class GateReceiver:
    """An HTTP server on a chosen loopback port answering POSTs from a script of
    ``(status, delay)`` (200 once it runs out), keeping each JSON body it got."""

    def __init__(self, port: int, *script: tuple[int, float]) -> None:
        self.port = port
        self.script = list(script)
        self.bodies: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/gate"

    def start(self) -> GateReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.bodies.append(json.loads(body))
                status, delay = receiver.script.pop(0) if receiver.script else (200, 0.0)
                if delay and receiver.stopping.wait(delay):
                    return
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"no")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the gate gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def test_a_receiver_that_is_down_then_comes_up_is_retried_until_it_answers() -> None:
    receiver = GateReceiver(free_port())
    recorded: list[GateStatus] = []

    async def calling(status: GateStatus) -> None:
        recorded.append(status)
        if status.attempts == 3:  # two calls found nothing listening; it is up for the third
            receiver.start()

    try:
        answer = asyncio.run(ask_gate(Webhook(receiver.url, 120.0), CALL, None, calling))
    finally:
        receiver.stop()

    assert answer.outcome is GateOutcome.PASSED and answer.passed, answer
    assert answer.attempts == 3 and "200 passed" in answer.message
    assert [s.attempts for s in recorded] == [1, 2, 3]
    assert all(s.outcome is GateOutcome.CALLING and not s.passed for s in recorded)
    assert len({s.started_at for s in recorded}) == 1, "the deadline runs from the first call"
    assert "ConnectError" in recorded[2].message  # why the second call was not an answer
    assert [body["attempt"] for body in receiver.bodies] == [3]
    assert receiver.bodies[0]["app"] == "team/shop" and receiver.bodies[0]["weight"] == 25


def test_a_5xx_is_retried_and_a_clear_4xx_is_a_refusal_at_once() -> None:
    receiver = GateReceiver(free_port(), (503, 0.0), (403, 0.0), (200, 0.0)).start()
    try:
        answer = asyncio.run(ask_gate(Webhook(receiver.url, 120.0), CALL))
    finally:
        receiver.stop()

    assert answer.outcome is GateOutcome.REFUSED and not answer.passed
    assert answer.attempts == 2 and "403 refused" in answer.message
    assert [body["attempt"] for body in receiver.bodies] == [1, 2]  # never asked a third time


def test_a_receiver_slower_than_the_steps_timeout_is_inconclusive_never_a_pass() -> None:
    receiver = GateReceiver(free_port(), (200, 30.0), (200, 30.0), (200, 30.0)).start()
    try:
        answer = asyncio.run(ask_gate(Webhook(receiver.url, 1.5), CALL))
    finally:
        receiver.stop()

    assert answer.outcome is GateOutcome.INCONCLUSIVE and not answer.passed
    assert answer.attempts >= 1 and "no answer within the step's 1.5s" in answer.message
    assert len(receiver.bodies) == answer.attempts


def test_a_replica_taking_over_goes_on_with_the_recorded_attempts_and_deadline() -> None:
    receiver = GateReceiver(free_port()).start()
    now = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    webhook = Webhook(receiver.url, 60.0)
    try:
        # the first leader called 4 times, then died; the step's timeout has passed since
        past = GateStatus(
            0, False, "attempt 4", GateOutcome.CALLING, 4, (now - timedelta(seconds=61)).isoformat()
        )
        late = asyncio.run(ask_gate(webhook, CALL, past, now=lambda: now))
        assert late.outcome is GateOutcome.INCONCLUSIVE and late.attempts == 4
        assert receiver.bodies == [], "no call past the deadline the first leader started"
        # within the deadline: the next call is the third, with the same first-call time
        recent = replace(past, attempts=2, started_at=(now - timedelta(seconds=5)).isoformat())
        going_on = asyncio.run(ask_gate(webhook, CALL, recent, now=lambda: now))
    finally:
        receiver.stop()

    assert going_on.outcome is GateOutcome.PASSED and going_on.attempts == 3
    assert going_on.started_at == recent.started_at
    assert [body["attempt"] for body in receiver.bodies] == [3]


def test_the_calls_and_outcomes_round_trip_through_status() -> None:
    calling = GateStatus(2, False, "attempt 1", GateOutcome.CALLING, 1, "2026-11-28T02:00:00+00:00")
    assert GateStatus.of(calling.to_dict()) == calling
    inconclusive = replace(calling, undecided=GateOutcome.INCONCLUSIVE, attempts=7)
    assert GateStatus.of(inconclusive.to_dict()) == inconclusive
    # a status written before outcomes were kept: passed or refused, as it said
    old_pass = GateStatus.of({"step": 1, "passed": True, "message": "200"})
    old_refusal = GateStatus.of({"step": 1, "passed": False, "message": "403"})
    assert old_pass is not None and old_pass.outcome is GateOutcome.PASSED
    assert old_refusal is not None and old_refusal.outcome is GateOutcome.REFUSED


def test_the_machine_keeps_calling_then_pauses_and_alerts_on_an_inconclusive_gate() -> None:
    spec = canary([{"webhook": {"url": "https://gate.example/check"}}, {"setWeight": 100}])
    asking = advance(spec, None, seen())
    calling = GateStatus(0, False, "attempt 2 (last: 503)", GateOutcome.CALLING, 2, "t")
    still = advance(spec, replace(asking.status, gate=calling), seen())
    assert still.status.phase is Phase.PROGRESSING and still.status.gate == calling
    assert [a.step for a in still.actions if isinstance(a, CallWebhook)] == [0]

    undecided = replace(calling, undecided=GateOutcome.INCONCLUSIVE, message="no answer")
    paused = advance(spec, replace(asking.status, gate=undecided), seen())
    assert paused.status.phase is Phase.INCONCLUSIVE and paused.status.step == 0
    assert "no answer" in paused.status.message
    assert not any(isinstance(a, Abort | CallWebhook) for a in paused.actions)
    alerts = [a for a in paused.actions if isinstance(a, Alert)]
    assert [a.event for a in alerts] == ["RolloutInconclusive"]
    # a person decides: promote goes past the gate
    promoted = advance(spec, paused.status, seen(request=RolloutRequest("promote", "1", "ann")))
    assert (promoted.status.phase, promoted.status.step) == (Phase.PROGRESSING, 1)


GATE_STEPS = """          - setWeight: 25
          - webhook: {{url: "GATE", timeout: TIMEOUT}}
          - setWeight: 100"""


def gated_rollout(
    repo: GitRepo, kubectl: Kubectl, namespace: str, url: str, timeout: str, extra: str = ""
) -> str:
    """v1 deployed, then v2 pushed behind a webhook gate at ``url``: v2's commit."""
    steps = GATE_STEPS.replace("GATE", url).replace("TIMEOUT", timeout)
    v1 = new_version()
    repo.write("app/web.yaml", deployment(v1)).commit("v1")
    apply_yaml(
        kubectl,
        source_and_app(namespace, str(repo.root), "app", extra=extra + delivery(v1, steps)),
    )
    wait_for(lambda: rollout(kubectl, namespace).get("phase") == "Promoted", ROLLOUT_TIMEOUT, "v1")
    v2 = new_version()
    commit = repo.write("app/web.yaml", deployment(v2)).commit(v2)
    kubectl(
        "annotate", "gitsources.tether.dev/repo", "-n", namespace, "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )  # fmt: skip
    return commit


def test_the_agent_retries_a_gate_that_is_down_and_goes_on_once_it_answers(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path
) -> None:
    start_agent("agent-a")  # before the gate's port is chosen: the agent takes a free one too
    receiver = GateReceiver(free_port())
    try:
        commit = gated_rollout(repo, kubectl, namespace, receiver.url, "120s")
        attempts: list[int] = []

        def retried() -> bool:
            gate = rollout(kubectl, namespace).get("gate") or {}
            if gate.get("outcome") == "Calling":
                attempts.append(int(gate["attempts"]))
            # the third attempt is recorded once the second went unanswered
            return bool(attempts) and attempts[-1] >= 3

        waited(kubectl, namespace, tmp_path, retried, "the gate called twice, unanswered")
        receiver.start()

        def promoted() -> bool:
            current = rollout(kubectl, namespace)
            assert current.get("phase") not in ("Aborted", "Inconclusive"), current
            return current.get("phase") == "Promoted" and current["stable"]["revision"] == commit

        waited(kubectl, namespace, tmp_path, promoted, "the rollout past the gate")
    finally:
        receiver.stop()
    (asked,) = receiver.bodies
    assert asked["revision"] == commit and asked["attempt"] >= 3
    assert attempts == sorted(attempts), "the attempts recorded only go up"
    passed = [d for d in audit_rows(tmp_path / "audit.db", "decision") if d["decision"] == "passed"]
    assert any("200 passed" in d["reason"] for d in passed), passed


def test_the_agent_pauses_and_alerts_when_a_gate_is_slower_than_its_step(
    start_agent: Any, kubectl: Kubectl, namespace: str, repo: GitRepo, tmp_path: Path
) -> None:
    receiver = GateReceiver(free_port(), *[(200, 60.0)] * 10).start()
    alerts = Recorder().start()
    try:
        apply_yaml(
            kubectl,
            f"""apiVersion: tether.dev/v1alpha1
kind: AlertProvider
metadata: {{name: hook, namespace: {namespace}}}
spec: {{type: webhook, url: "{alerts.url}", events: [RolloutInconclusive, RolloutAborted]}}
""",
        )
        start_agent("agent-a")
        gated_rollout(repo, kubectl, namespace, receiver.url, "3s")
        waited(
            kubectl,
            namespace,
            tmp_path,
            lambda: rollout(kubectl, namespace).get("phase") == "Inconclusive",
            "the gate to be inconclusive",
        )
        wait_for(lambda: alerts.received, 60, "the alert")
        time.sleep(3)  # it stays paused: never passed, never rolled back by itself
        current = rollout(kubectl, namespace)
        sent = [json.loads(r.body) for r in alerts.received]
    finally:
        receiver.stop()
        alerts.stop()
    assert current["phase"] == "Inconclusive" and current["step"] == 1
    assert current["gate"]["outcome"] == "Inconclusive" and current["gate"]["passed"] is False
    assert "no answer within the step's 3s" in current["message"]
    assert [a["event"] for a in sent] == ["RolloutInconclusive"]
    assert "WebhookInconclusive" in events(kubectl, namespace)
    assert deploy(kubectl, namespace, "web-canary") is not None
