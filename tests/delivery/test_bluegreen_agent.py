"""Blue-green releases driven by the agent, run as a process against the real control plane and
judged by a real Prometheus scraping the test's metrics app: one promoted after its pre- and
post-promotion analyses (the active Service switched to the preview's pods while stable still
ran, then handed back to the Git name), one aborted by its pre-promotion analysis (the active
Service never left stable)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.agent.conftest import (
    apply_yaml,
    source_and_app,
    start_agent,
    tether_crds,
    wait_for,
)
from tests.analysis.prom import Prometheus
from tests.conftest import GitRepo, Kubectl
from tests.delivery import renders
from tests.delivery.agentkit import ROLLOUT_TIMEOUT, rollout, waited
from tests.delivery.signals import MetricsApp, error_ratio, new_version, unready_image

__all__ = ["start_agent", "tether_crds"]  # fixtures used here


def _render(version: str, prometheus: Prometheus, tag: str = "") -> str:
    query = (
        'sum(rate(web_errors_total{version="{{args.version}}"}[5s])) / '
        'sum(rate(web_requests_total{version="{{args.version}}"}[5s]))'
    )
    return (
        renders.blue_green_render(version, tag)
        + f"""---
apiVersion: tether.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: error-rate}}
spec:
  args: [{{name: version}}]
  metrics:
    - name: error-rate
      interval: 1s
      count: 3
      successCondition: result[0] < 0.05
      failureCondition: result[0] >= 0.05
      provider:
        prometheus:
          address: {prometheus.url}
          query: '{query}'
---
# After the switch: measured a few seconds later, so the switch can be seen while stable runs.
apiVersion: tether.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: error-rate-after-switch}}
spec:
  args: [{{name: version}}]
  metrics:
    - name: error-rate
      initialDelay: 5s
      interval: 1s
      count: 2
      successCondition: result[0] < 0.05
      failureCondition: result[0] >= 0.05
      provider:
        prometheus:
          address: {prometheus.url}
          query: '{query}'
"""
    )


def _check(template: str, version: str) -> str:
    return (
        f"{{templates: [{{templateName: {template}}}], "
        f'args: [{{name: version, value: "{version}"}}]}}'
    )


def _delivery(version: str) -> str:
    return f"""  delivery:
    - target: {{kind: Deployment, name: web}}
      blueGreen:
        activeService: web
        previewService: web-preview
        prePromotionAnalysis: {_check("error-rate", version)}
        postPromotionAnalysis: {_check("error-rate-after-switch", version)}
        scaleDownDelay: 2s
"""


class SelectorWatch:
    """Every ``pod-template-hash`` a Service selects, in order, from a ``kubectl --watch`` (a
    poll could miss one that lasts a moment)."""

    def __init__(self, kubectl: Kubectl, namespace: str, service: str) -> None:
        self.hashes: list[str | None] = []
        self._process = subprocess.Popen(
            [
                str(kubectl.binary),
                f"--kubeconfig={kubectl.kubeconfig}",
                "get",
                "service",
                service,
                "-n",
                namespace,
                "--watch",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        for line in self._process.stdout:
            buffer += line
            try:
                service, end = decoder.raw_decode(buffer.lstrip())
            except ValueError:
                continue
            buffer = buffer.lstrip()[end:]
            selected = (service.get("spec") or {}).get("selector", {}).get("pod-template-hash")
            if not self.hashes or self.hashes[-1] != selected:
                self.hashes.append(selected)

    def stop(self) -> list[str | None]:
        self._process.terminate()
        self._process.wait(10)
        self._reader.join(10)
        return self.hashes


def _hash_of(kubectl: Kubectl, namespace: str, selector: str) -> str | None:
    """The pod-template-hash of the ReplicaSet with all its pods available among ``selector``'s."""
    listed = json.loads(
        kubectl("get", "replicasets", "-n", namespace, "-l", selector, "-o", "json").stdout
    )
    for item in listed["items"]:
        wanted = item["spec"].get("replicas", 0)
        if wanted and item["status"].get("availableReplicas", 0) == wanted:
            return str(item["metadata"]["labels"]["pod-template-hash"])
    return None


def _active_hash(kubectl: Kubectl, namespace: str) -> str | None:
    service = kubectl.get("service", "web", namespace) or {}
    return (service.get("spec") or {}).get("selector", {}).get("pod-template-hash")


def _image(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    deployment = kubectl.get("deployment", name, namespace)
    if deployment is None:
        return None
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def _first_release(
    repo: GitRepo, kubectl: Kubectl, namespace: str, prometheus: Prometheus
) -> tuple[str, str]:
    """v1 in Git and deployed; its ReplicaSet's hash."""
    v1 = new_version()
    repo.write("app/web.yaml", _render(v1, prometheus)).commit("v1")
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=_delivery(v1)))
    wait_for(
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Promoted"
            and _hash_of(kubectl, namespace, "app=web,!tether.dev/track")
        ),
        ROLLOUT_TIMEOUT,
        "v1 to be deployed",
    )
    stable_hash = _hash_of(kubectl, namespace, "app=web,!tether.dev/track")
    assert stable_hash is not None
    return v1, stable_hash


def _push(
    repo: GitRepo,
    kubectl: Kubectl,
    namespace: str,
    prometheus: Prometheus,
    version: str,
    tag: str = "",
) -> str:
    repo.write("app/web.yaml", _render(version, prometheus, tag))
    commit = repo.commit(version)
    apply_yaml(kubectl, source_and_app(namespace, str(repo.root), "app", extra=_delivery(version)))
    kubectl(
        "annotate",
        "gitsources.tether.dev/repo",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )
    return commit


def test_a_blue_green_is_promoted_after_pre_promotion_analysis(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    start_agent("agent-a")
    v1, stable_hash = _first_release(repo, kubectl, namespace, prometheus)
    v2 = new_version()
    metrics_app.serve(v2, error_rate=0.0)
    prometheus.wait_for(error_ratio(v2, window="5s"), 0.0)
    watch = SelectorWatch(kubectl, namespace, "web")
    commit = _push(repo, kubectl, namespace, prometheus, v2)

    both_full: list[bool] = []
    on_preview: list[tuple[str, str | None]] = []
    preview_hashes: set[str] = set()

    def promoted() -> bool:
        current = rollout(kubectl, namespace)
        phase = current.get("phase")
        assert phase not in ("Aborted", "Frozen", "Inconclusive"), current
        if phase == "Progressing":
            web, preview = (kubectl.get("deployment", n, namespace) for n in ("web", "web-preview"))
            active = _active_hash(kubectl, namespace)
            preview_hash = _hash_of(kubectl, namespace, "tether.dev/track=preview")
            running = _hash_of(kubectl, namespace, f"pod-template-hash={stable_hash}")
            again = rollout(kubectl, namespace)
            if preview_hash:
                preview_hashes.add(preview_hash)
            if (again.get("phase"), again.get("step")) != (phase, current.get("step")):
                return False  # it moved while we looked: judge the next look
            if web and preview:
                both_full.append(web["spec"]["replicas"] == preview["spec"]["replicas"] == 2)
                image = web["spec"]["template"]["spec"]["containers"][0]["image"]
                assert image == f"registry.example/web:{v1}", "stable keeps serving v1"
            if active and active == preview_hash:
                on_preview.append((active, running))  # stable's pods still run beside
        return phase == "Promoted" and (current.get("stable") or {}).get("revision") == commit

    waited(kubectl, namespace, tmp_path, promoted, "the blue-green to be promoted")
    assert both_full and all(both_full)
    assert on_preview, "the active Service never selected the preview's pods"
    assert all(stable == stable_hash for _, stable in on_preview)
    assert _image(kubectl, namespace, "web") == f"registry.example/web:{v2}"
    # The Git name serves v2; the preview goes once its scale-down delay is over, and then the
    # App is idle: its Services as Git wrote them (only the Git name's pods exist).
    final = _hash_of(kubectl, namespace, "app=web,!tether.dev/track")
    assert final not in (stable_hash, on_preview[0][0])
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: kubectl.get("deployment", "web-preview", namespace) is None,
        "the preview to be scaled down after its delay",
    )
    wait_for(lambda: _active_hash(kubectl, namespace) is None, 60, "the active Service as in Git")
    # Every selector the active Service had, in order: Git's (idle), stable, the preview, the
    # new stable while the preview lingered, Git's once idle again.
    selected = watch.stop()
    assert preview_hashes == {on_preview[0][0]}
    assert selected == [None, stable_hash, on_preview[0][0], final, None]


def test_a_blue_green_whose_preview_fails_pre_promotion_analysis_is_aborted(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    start_agent("agent-a")
    v1, stable_hash = _first_release(repo, kubectl, namespace, prometheus)
    v2 = new_version()
    metrics_app.serve(v2, error_rate=0.5)
    prometheus.wait_for(error_ratio(v2, window="5s"), 0.5)
    watch = SelectorWatch(kubectl, namespace, "web")
    _push(repo, kubectl, namespace, prometheus, v2)

    active_seen: set[str | None] = set()
    preview_seen: list[bool] = []

    def aborted() -> bool:
        active_seen.add(_active_hash(kubectl, namespace))
        preview_seen.append(kubectl.get("deployment", "web-preview", namespace) is not None)
        return rollout(kubectl, namespace).get("phase") == "Aborted"

    waited(kubectl, namespace, tmp_path, aborted, "the blue-green to be aborted")
    current = rollout(kubectl, namespace)
    assert "error-rate" in current.get("message", ""), current
    assert any(preview_seen), "the preview never ran"
    assert active_seen - {None} == {stable_hash}, "the active Service left stable"
    assert _image(kubectl, namespace, "web") == f"registry.example/web:{v1}"
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: kubectl.get("deployment", "web-preview", namespace) is None,
        "the preview to be taken down",
    )
    assert set(watch.stop()) - {None} == {stable_hash}, "the active Service left stable"


def test_a_preview_that_never_becomes_ready_never_takes_traffic_and_a_fix_replaces_it(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    start_agent("agent-a")
    _, stable_hash = _first_release(repo, kubectl, namespace, prometheus)
    broken = new_version()
    tag = unready_image("registry.example/web", broken).rsplit(":", 1)[1]
    _push(repo, kubectl, namespace, prometheus, broken, tag)

    def preview_running_unready() -> bool:
        pods = json.loads(
            kubectl(
                "get", "pods", "-n", namespace, "-l", "tether.dev/track=preview", "-o", "json"
            ).stdout
        )["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return len(running) == 2 and rollout(kubectl, namespace).get("phase") == "Progressing"

    waited(kubectl, namespace, tmp_path, preview_running_unready, "the preview's pods to run")
    # Held at step 0 for as long as we look: the machine waits for a Ready preview.
    for _ in range(20):
        current = rollout(kubectl, namespace)
        assert (current.get("phase"), current.get("step")) == ("Progressing", 0), current
        assert _active_hash(kubectl, namespace) == stable_hash
        time.sleep(0.25)
    assert "waiting for the candidate" in current.get("message", "")

    fixed = new_version()
    metrics_app.serve(fixed, error_rate=0.0)
    prometheus.wait_for(error_ratio(fixed, window="5s"), 0.0)
    commit = _push(repo, kubectl, namespace, prometheus, fixed)
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            (rollout(kubectl, namespace).get("stable") or {}).get("revision") == commit
            and rollout(kubectl, namespace).get("phase") == "Promoted"
        ),
        "the fix to replace the broken preview and be promoted",
    )
    assert _image(kubectl, namespace, "web") == f"registry.example/web:{fixed}"
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: kubectl.get("deployment", "web-preview", namespace) is None,
        "the preview to be taken down after its delay",
    )


def _delivery_by_hand(version: str) -> str:
    return _delivery(version).replace(
        "        scaleDownDelay: 2s\n",
        "        autoPromotionEnabled: false\n        scaleDownDelay: 2s\n",
    )


def test_two_replicas_the_leader_killed_while_paused_before_the_switch(
    start_agent: Any,
    kubectl: Kubectl,
    namespace: str,
    repo: GitRepo,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
    tmp_path: Path,
) -> None:
    agents = {name: start_agent(name) for name in ("agent-a", "agent-b")}
    v1 = new_version()
    repo.write("app/web.yaml", _render(v1, prometheus)).commit("v1")
    apply_yaml(
        kubectl, source_and_app(namespace, str(repo.root), "app", extra=_delivery_by_hand(v1))
    )
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Promoted"
            and _hash_of(kubectl, namespace, "app=web,!tether.dev/track")
        ),
        "v1 to be deployed",
    )
    stable_hash = _hash_of(kubectl, namespace, "app=web,!tether.dev/track")
    v2 = new_version()
    metrics_app.serve(v2, error_rate=0.0)
    prometheus.wait_for(error_ratio(v2, window="5s"), 0.0)
    repo.write("app/web.yaml", _render(v2, prometheus))
    commit = repo.commit(v2)
    apply_yaml(
        kubectl, source_and_app(namespace, str(repo.root), "app", extra=_delivery_by_hand(v2))
    )
    kubectl(
        "annotate",
        "gitsources.tether.dev/repo",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/reconcile-requested-at={time.time()}",
    )
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: rollout(kubectl, namespace).get("phase") == "Paused",
        "the pre-promotion analysis passed and the rollout paused before the switch",
    )
    assert _active_hash(kubectl, namespace) == stable_hash
    lease = kubectl.get("lease", "tether-agent", namespace)
    assert lease is not None
    leader = lease["spec"]["holderIdentity"]
    agents[leader].kill()

    kubectl(
        "annotate",
        "apps.tether.dev/web",
        "-n",
        namespace,
        "--overwrite",
        f"tether.dev/rollout-action=promote@{time.time()}",
    )
    waited(
        kubectl,
        namespace,
        tmp_path,
        lambda: (
            rollout(kubectl, namespace).get("phase") == "Promoted"
            and (rollout(kubectl, namespace).get("stable") or {}).get("revision") == commit
        ),
        "the other replica to take over and promote",
    )
    lease = kubectl.get("lease", "tether-agent", namespace)
    assert lease is not None and lease["spec"]["holderIdentity"] != leader
    assert _image(kubectl, namespace, "web") == f"registry.example/web:{v2}"
    final = _hash_of(kubectl, namespace, "app=web,!tether.dev/track")
    assert final != stable_hash
