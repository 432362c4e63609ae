"""Blue-green on the delivery machine: the pure flow (pre-promotion analysis, the switch, post-
promotion analysis, manual promotion, scale-down delay, abort), then whole releases against the
real API server with analysis measured by a real Prometheus: one promoted after its pre- and
post-promotion analyses, one aborted by its pre-promotion analysis while stable kept serving.

The delivery runner (agent side) is the ``delivery`` helper's; ``Release`` below plays it for one
target, doing only what a runner does: observe, ``advance``, act, apply the shaped objects.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.analysis.prom import Prometheus
from tests.conftest import Kubectl
from tests.delivery.signals import MetricsApp, error_ratio, new_version
from tether.analysis import read_template, run_analysis
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import load
from tether.core import Manifest
from tether.delivery import bluegreen, traffic
from tether.delivery.machine import Abort, StartAnalysis, WakeUp, advance
from tether.delivery.model import (
    ROLLOUT_LABEL,
    TEMPLATE_DIGEST_ANNOTATION,
    TRACK_LABEL,
    AnalysisArg,
    AnalysisStatus,
    AnalysisStep,
    BlueGreen,
    DeliverySpec,
    Observations,
    Phase,
    RolloutRequest,
    RolloutStatus,
    Target,
    Version,
)
from tether.devcluster.controlplane import DevCluster

TEMPLATES = Path(__file__).parent / "templates"
NOW = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
V1, V2 = Version("c1", "template-v1"), Version("c2", "template-v2")
CHECK = AnalysisStep(("error-rate",))


def _spec(**blue_green: Any) -> DeliverySpec:
    settings = {"pre_promotion": CHECK, "scale_down_delay": 30.0, **blue_green}
    return DeliverySpec(
        Target("Deployment", "web"), blue_green=BlueGreen("web", "web-preview", **settings)
    )


def _seen(at: float, **observed: Any) -> Observations:
    return Observations(now=NOW + timedelta(seconds=at), head=V2, serving=V1, **observed)


def _verdict(step: int, phase: str) -> AnalysisStatus:
    return AnalysisStatus(step, "error-rate", phase, (), (f"error-rate: {phase}",))


# -- the flow, pure --------------------------------------------------------------------------


def test_promoted_after_pre_promotion_analysis_then_the_preview_waits_out_its_delay() -> None:
    spec = _spec()
    machine = bluegreen.machine_spec(spec)
    started = advance(machine, None, _seen(0))
    assert (started.status.phase, started.status.step, started.status.weight) == (
        Phase.PROGRESSING,
        0,
        100,
    )
    assert any(isinstance(a, WakeUp) for a in started.actions)  # the preview comes up first
    assert bluegreen.replicas(started.status, 3) == (3, 3)
    assert not bluegreen.active_on_preview(spec, started.status)

    ready = advance(machine, started.status, _seen(1, total=3, candidate_available=3))
    assert ready.status.step == 1
    assert [a.step for a in ready.actions if isinstance(a, StartAnalysis)] == [1]
    assert not bluegreen.active_on_preview(spec, ready.status)

    passed = advance(
        machine,
        ready.status,
        _seen(5, total=3, candidate_available=3, analysis=_verdict(1, "Successful")),
    )
    assert passed.status.phase is Phase.PROMOTING
    assert bluegreen.active_on_preview(spec, passed.status)  # the switch: no post analysis

    done = advance(
        machine, passed.status, _seen(8, total=3, candidate_available=3, promoted_ready=True)
    )
    assert done.status.phase is Phase.PROMOTED
    assert done.status.stable == V2 and done.status.candidate is None
    assert not bluegreen.active_on_preview(spec, done.status)  # the Git name serves again
    assert bluegreen.preview_left(spec, done.status, NOW + timedelta(seconds=8)) == 30.0
    promoted_preview = {"metadata": {"annotations": {TEMPLATE_DIGEST_ANNOTATION: V2.digest}}}
    assert (
        bluegreen.lingers(spec, done.status, promoted_preview, NOW + timedelta(seconds=37)) == 1.0
    )
    assert bluegreen.lingers(spec, done.status, promoted_preview, NOW + timedelta(seconds=38)) == 0
    assert bluegreen.replicas(done.status, 3, lingering=True) == (3, 3)
    assert bluegreen.replicas(done.status, 3) == (3, 0)
    # A preview of anything else than what was promoted (a cancelled rollout's) never lingers.
    other = {"metadata": {"annotations": {TEMPLATE_DIGEST_ANNOTATION: V1.digest}}}
    assert bluegreen.lingers(spec, done.status, other, NOW + timedelta(seconds=8)) == 0
    assert bluegreen.lingers(spec, done.status, None, NOW + timedelta(seconds=8)) == 0


def test_a_failed_pre_promotion_analysis_aborts_before_any_switch() -> None:
    spec = _spec()
    machine = bluegreen.machine_spec(spec)
    ready = advance(
        machine, advance(machine, None, _seen(0)).status, _seen(1, total=3, candidate_available=3)
    )
    failed = advance(
        machine,
        ready.status,
        _seen(4, total=3, candidate_available=3, analysis=_verdict(1, "Failed")),
    )
    assert failed.status.phase is Phase.ABORTED
    aborts = [a for a in failed.actions if isinstance(a, Abort)]
    assert len(aborts) == 1 and "error-rate" in aborts[0].reason
    assert not bluegreen.active_on_preview(spec, failed.status)
    assert bluegreen.replicas(failed.status, 3) == (3, 0)


def test_a_failed_post_promotion_analysis_switches_the_active_service_back() -> None:
    spec = _spec(post_promotion=CHECK)
    machine = bluegreen.machine_spec(spec)
    assert bluegreen.switch_step(spec.blue_green) == 2  # type: ignore[arg-type]
    ready = advance(
        machine, advance(machine, None, _seen(0)).status, _seen(1, total=3, candidate_available=3)
    )
    switched = advance(
        machine,
        ready.status,
        _seen(4, total=3, candidate_available=3, analysis=_verdict(1, "Successful")),
    )
    assert switched.status.step == 2
    assert bluegreen.active_on_preview(spec, switched.status)
    assert [a.step for a in switched.actions if isinstance(a, StartAnalysis)] == [2]
    hashes = bluegreen.Hashes(stable="h1", preview="h2")
    active, preview = bluegreen.selections(spec, switched.status, hashes)
    assert (active.name, dict(active.extra)) == ("web", {"pod-template-hash": "h2"})
    assert (preview.name, dict(preview.extra)) == ("web-preview", {TRACK_LABEL: "preview"})

    failed = advance(
        machine,
        switched.status,
        _seen(8, total=3, candidate_available=3, analysis=_verdict(2, "Failed")),
    )
    assert failed.status.phase is Phase.ABORTED
    active, _ = bluegreen.selections(spec, failed.status, hashes)
    assert dict(active.extra) == {"pod-template-hash": "h1"}  # straight back to stable


def test_without_auto_promotion_the_switch_waits_for_a_person() -> None:
    spec = _spec(auto_promotion=False)
    machine = bluegreen.machine_spec(spec)
    ready = advance(
        machine, advance(machine, None, _seen(0)).status, _seen(1, total=3, candidate_available=3)
    )
    paused = advance(
        machine,
        ready.status,
        _seen(4, total=3, candidate_available=3, analysis=_verdict(1, "Successful")),
    )
    assert paused.status.phase is Phase.PAUSED
    assert not bluegreen.active_on_preview(spec, paused.status)
    request = RolloutRequest("promote", "2026-11-27T22:00:10Z", by="alice")
    promoted = advance(
        machine, paused.status, _seen(10, total=3, candidate_available=3, request=request)
    )
    assert promoted.status.phase is Phase.PROMOTING
    assert bluegreen.active_on_preview(spec, promoted.status)


def test_an_unready_preview_is_never_selected_by_the_active_service() -> None:
    spec = _spec(pre_promotion=None)
    status = RolloutStatus(phase=Phase.PROMOTING, step=1, weight=100, candidate=V2, stable=V1)
    active, _ = bluegreen.selections(spec, status, bluegreen.Hashes(stable="h1", preview=None))
    assert dict(active.extra) == {"pod-template-hash": "h1"}


# -- whole releases against the API server, analysis by a real Prometheus --------------------


def _deployment(name: str, image: str, replicas: int, extra: dict[str, str]) -> dict[str, Any]:
    labels = {"app": "web", **extra}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def _services() -> list[Manifest]:
    return [
        Manifest(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
            }
        )
        for name in ("web", "web-preview")
    ]


@dataclass
class Release:
    """One blue-green release of ``web`` from ``stable_image`` to ``head_image``, run the way
    the agent's runner does: observe, advance, act, apply; as the App's ServiceAccount."""

    spec: DeliverySpec
    client: KubeClient
    namespace: str
    stable_image: str
    head_image: str
    prometheus: str
    status: RolloutStatus | None = None
    analysis: AnalysisStatus | None = None
    history: list[tuple[str, int, str]] = field(default_factory=list)  # phase, step, active hash
    lingering: bool = False
    on_switch: Any = None

    async def run(self, replicas: int = 2) -> RolloutStatus:
        self.status = RolloutStatus(phase=Phase.PROMOTED, stable=Version("c1", self.stable_image))
        while True:
            hashes = await bluegreen.observe(self.client, self.namespace, self.spec)
            seen = Observations(
                now=datetime.now(UTC),
                head=Version("c2", self.head_image),
                serving=self.status.stable,
                total=replicas,
                candidate_available=replicas if hashes.preview is not None else 0,
                promoted_ready=await self._serving(self.head_image),
                analysis=self.analysis,
            )
            step = advance(bluegreen.machine_spec(self.spec), self.status, seen)
            self.status = step.status
            await self._apply(replicas, hashes, seen.now)
            for action in step.actions:
                if isinstance(action, StartAnalysis):
                    self.analysis = await self._analyse(action)
            if self._finished():
                return self.status
            if not any(isinstance(a, StartAnalysis) for a in step.actions):
                await asyncio.sleep(0.3)

    def _finished(self) -> bool:
        assert self.status is not None
        idle = self.status.phase in (Phase.PROMOTED, Phase.ABORTED)
        return idle and not self.lingering

    async def _serving(self, image: str) -> bool:
        resource = await self.client.resource("apps/v1", "Deployment")
        live = await self.client.get(resource, self.namespace, "web")
        containers = ((live or {}).get("spec", {}).get("template", {}).get("spec", {})).get(
            "containers"
        ) or [{}]
        if containers[0].get("image") != image:
            return False
        return await traffic.observe_serving_hash(self.client, self.namespace, "web") is not None

    async def _apply(self, replicas: int, hashes: bluegreen.Hashes, now: datetime) -> None:
        assert self.status is not None
        status = self.status
        deployments = await self.client.resource("apps/v1", "Deployment")
        live_preview = await self.client.get(deployments, self.namespace, "web-preview")
        self.lingering = bluegreen.lingers(self.spec, status, live_preview, now) > 0
        stable_size, preview_size = bluegreen.replicas(status, replicas, self.lingering)
        serving_head = status.phase in (Phase.PROMOTING, Phase.PROMOTED)
        web = _deployment(
            "web", self.head_image if serving_head else self.stable_image, stable_size, {}
        )
        web["metadata"]["namespace"] = self.namespace
        await self.client.apply(deployments, web, dry_run=False)
        preview_labels = {ROLLOUT_LABEL: "web", TRACK_LABEL: "preview"}
        if preview_size:
            preview = _deployment("web-preview", self.head_image, preview_size, preview_labels)
            preview["metadata"]["namespace"] = self.namespace
            preview["metadata"]["annotations"] = {TEMPLATE_DIGEST_ANNOTATION: self.head_image}
            await self.client.apply(deployments, preview, dry_run=False)
        elif live_preview is not None:
            await self.client.delete(deployments, self.namespace, "web-preview")
        await bluegreen.apply(self.client, self.namespace, _services(), self.spec, status, hashes)
        active, _ = bluegreen.selections(self.spec, status, hashes)
        mark = (status.phase.value, status.step, active.extra.get("pod-template-hash", ""))
        if not self.history or self.history[-1] != mark:
            self.history.append(mark)
            on_preview = bluegreen.active_on_preview(self.spec, status) and hashes.preview
            if on_preview and self.on_switch is not None and status.phase is Phase.PROGRESSING:
                self.on_switch(hashes)

    async def _analyse(self, action: StartAnalysis) -> AnalysisStatus:
        document = yaml.safe_load((TEMPLATES / "error-rate.yaml").read_text())
        args = {arg.name: arg.value for arg in action.analysis.args}
        metrics = read_template(document).instantiate({**args, "prometheus": self.prometheus})
        result = await run_analysis(metrics)
        measurements = tuple(m.to_record() for r in result.metrics for m in r.measurements)
        return AnalysisStatus(
            action.step, "error-rate", result.verdict.value, measurements, tuple(result.reasons())
        )


def _identity(kubectl: Kubectl, namespace: str) -> str:
    kubectl("create", "serviceaccount", "deployer", "-n", namespace)
    kubectl(
        "create",
        "role",
        "deployer",
        "-n",
        namespace,
        "--verb=get,list,watch,patch,create,delete",
        "--resource=services,deployments,replicasets",
    )
    kubectl(
        "create",
        "rolebinding",
        "deployer",
        "-n",
        namespace,
        "--role=deployer",
        f"--serviceaccount={namespace}:deployer",
    )
    return f"{namespace}/deployer"


def _ips(kubectl: Kubectl, namespace: str, selector: str) -> set[str]:
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)
    return {
        p["status"]["podIP"]
        for p in pods["items"]
        if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")
    }


def _endpoints(kubectl: Kubectl, namespace: str, service: str) -> set[str]:
    slices = json.loads(
        kubectl(
            "get",
            "endpointslices",
            "-n",
            namespace,
            "-l",
            f"kubernetes.io/service-name={service}",
            "-o",
            "json",
        ).stdout
    )
    return {
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses") or []
    }


def _wait_endpoints(kubectl: Kubectl, namespace: str, service: str, expected: set[str]) -> None:
    seen: set[str] = set()
    for _ in range(240):
        seen = _endpoints(kubectl, namespace, service)
        if seen == expected:
            return
        time.sleep(0.25)
    raise AssertionError(f"Service {service} serves {seen}, expected {expected}")


def _release(
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    spec: DeliverySpec,
    prometheus: Prometheus,
    head_image: str,
    on_switch: Any = None,
) -> Release:
    identity = _identity(kubectl, namespace)
    kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=json.dumps(_deployment("web", "web:v1", 2, {}))
    )
    kubectl("rollout", "status", "-n", namespace, "deployment/web", "--timeout=120s")

    async def go() -> Release:
        async with KubeClient(load(dev_cluster.kubeconfig_path)) as admin:
            release = Release(
                spec,
                admin.impersonating(identity),
                namespace,
                "web:v1",
                head_image,
                prometheus.url,
                on_switch=on_switch,
            )
            await asyncio.wait_for(release.run(), 240)
            return release

    return asyncio.run(go())


def test_a_release_is_promoted_after_pre_and_post_promotion_analysis(
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
) -> None:
    version = new_version()
    metrics_app.serve(version, error_rate=0.0)
    prometheus.wait_for(error_ratio(version, window="5s"), 0.0)
    check = AnalysisStep(("error-rate",), (AnalysisArg("version", version),))
    spec = _spec(pre_promotion=check, post_promotion=check, scale_down_delay=2.0)
    switched: list[set[str]] = []

    def at_switch(hashes: bluegreen.Hashes) -> None:
        # The active Service moved to the preview's pods while stable's still run.
        preview_ips = _ips(kubectl, namespace, f"pod-template-hash={hashes.preview}")
        _wait_endpoints(kubectl, namespace, "web", preview_ips)
        assert len(_ips(kubectl, namespace, f"pod-template-hash={hashes.stable}")) == 2
        switched.append(preview_ips)

    release = _release(dev_cluster, kubectl, namespace, spec, prometheus, "web:v2", at_switch)
    assert release.status is not None and release.status.phase is Phase.PROMOTED
    assert release.status.stable is not None and release.status.stable.digest == "web:v2"
    assert switched and len(switched[0]) == 2
    phases = [phase for phase, _, _ in release.history]
    assert phases.index("Progressing") < phases.index("Promoting") < phases.index("Promoted")
    hashes = [active for _, _, active in release.history]
    stable_hash, preview_hash = (
        hashes[0],
        hashes[[p for p, s, _ in release.history].index("Promoting")],
    )
    assert stable_hash != preview_hash
    # Promoted: the Git name serves v2 and the active Service is on its new pods; preview gone.
    web = kubectl.get("deployment", "web", namespace)
    assert web is not None
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "web:v2"
    service = kubectl.get("service", "web", namespace)
    assert service is not None
    final_hash = service["spec"]["selector"]["pod-template-hash"]
    assert final_hash not in (stable_hash, preview_hash)
    _wait_endpoints(
        kubectl, namespace, "web", _ips(kubectl, namespace, f"pod-template-hash={final_hash}")
    )
    assert kubectl.get("deployment", "web-preview", namespace) is None


def test_a_release_whose_preview_fails_pre_promotion_analysis_is_aborted(
    dev_cluster: DevCluster,
    kubectl: Kubectl,
    namespace: str,
    metrics_app: MetricsApp,
    prometheus: Prometheus,
) -> None:
    version = new_version()
    metrics_app.serve(version, error_rate=0.4)
    prometheus.wait_for(error_ratio(version, window="5s"), 0.4)
    check = AnalysisStep(("error-rate",), (AnalysisArg("version", version),))
    spec = _spec(pre_promotion=check, post_promotion=check, scale_down_delay=0.0)
    release = _release(dev_cluster, kubectl, namespace, spec, prometheus, "web:v2")
    assert release.status is not None and release.status.phase is Phase.ABORTED
    assert release.analysis is not None and release.analysis.phase == "Failed"
    assert any("error-rate" in reason for reason in release.analysis.reasons)
    # The active Service never left stable: one hash through the whole release.
    assert {active for _, _, active in release.history} == {release.history[0][2]}
    web = kubectl.get("deployment", "web", namespace)
    assert web is not None
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "web:v1"
    _wait_endpoints(
        kubectl,
        namespace,
        "web",
        _ips(kubectl, namespace, f"pod-template-hash={release.history[0][2]}"),
    )
    assert kubectl.get("deployment", "web-preview", namespace) is None
