"""Driving rollouts from a reconcile pass: observe, ``advance``, record, act, shape.

The agent hands every pass of an App with ``spec.delivery`` to ``DeliveryRunner.shape`` (the
``ManifestShaper`` of ``tether.reconcile.run``). For each target it reads the live Deployments,
asks the pure machine for the next status, WRITES that status to the App before anything is
applied (so a crash at any later point resumes from it), performs the machine's actions, and
returns the render shaped for the new status. Long work (an analysis, a webhook gate) runs in
background tasks that record their progress in the same status and poke the App when done.

Everything the runner tells the world goes through an ``Outlet`` the agent implements: the App's
status, Events, alerts, the audit trail, metrics and pokes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from tether.analysis import JobContext
from tether.cluster.client import KubeClient, Resource
from tether.core import Manifest, ObjectRef, Revision
from tether.delivery import routing
from tether.delivery.analysiscluster import (
    KubeJobs,
    SecretArgs,
    delete_jobs,
    job_labels,
    pod_template_hashes,
)
from tether.delivery.canary import AnalysisWiring, PodTemplateHashes, run_step_analysis
from tether.delivery.gates import GateCall, ask_gate
from tether.delivery.machine import (
    Abort,
    Action,
    Alert,
    CallWebhook,
    Decision,
    Event,
    StartAnalysis,
    WakeUp,
    aborts_at_once,
    advance,
)
from tether.delivery.model import (
    CANDIDATE_KINDS,
    ROLLOUT_LABEL,
    TEMPLATE_DIGEST_ANNOTATION,
    TRACK_LABEL,
    AnalysisStatus,
    DeliverySpec,
    GateStatus,
    Observations,
    RolloutRequest,
    RolloutStatus,
    Version,
)
from tether.delivery.shaping import (
    autoscaled_replicas,
    find_target,
    stable_template,
    template_digest,
    total_replicas,
)
from tether.errors import TetherError

log = logging.getLogger("tether.delivery")


class Outlet(Protocol):
    """What the runner needs from the agent, for one App."""

    async def load(self) -> Mapping[str, Any]:
        """``status.delivery`` as the App holds it (a new replica starts from it)."""
        ...

    async def save(
        self, delivery: dict[str, Any], rollback: Mapping[str, str] | None = None
    ) -> None:
        """Write ``status.delivery`` (the whole map, each target's status whole); with
        ``rollback``, in the same write, the rollback an abort asks for
        (``status.pendingRollback``: what any replica runs if this one dies first)."""
        ...

    async def event(self, type_: str, reason: str, message: str) -> None: ...

    def alert(self, event: str, severity: str, summary: str) -> None: ...

    async def audit(self, target: str, kind: str, record: dict[str, Any]) -> None:
        """Append a gate decision or a measurement to the audit trail."""
        ...

    def observe(self, target: str, status: RolloutStatus) -> None:
        """Metrics for ``target``'s rollout."""
        ...

    def forget(self, target: str) -> None:
        """Drop the metrics series of ``target``: it left ``spec.delivery``."""
        ...

    def poke(self, after: float, why: str) -> None:
        """Run a pass of the App in ``after`` seconds."""
        ...

    def superseding(self, refs: Sequence[ObjectRef]) -> None:
        """``refs`` are about to be written ahead of the App's next pass (a fast restore):
        their changes are that pass's to judge, not drift."""
        ...

    def restored(self, target: str) -> None:
        """``target``'s stable was just restored ahead of the pass that records its abort
        (the agent's tests-only crash point: ``--test-crash-after-fast-restore``)."""
        ...

    def rollback(self, request: Mapping[str, str]) -> None:
        """Roll the App back to its last good render and quarantine the candidate's commit,
        once the pass under way has ended (``tether.delivery.rollback.abort``); ``request``
        (reason, evidence, actor, revision) is already saved as pending."""
        ...


@dataclass
class AppRollouts:
    """One App's rollouts as this replica drives them."""

    app: str  # namespace/name
    namespace: str  # where its objects live
    outlet: Outlet
    statuses: dict[str, RolloutStatus] | None = None  # None: not read from the App yet
    templates: list[Manifest] = field(default_factory=list)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    writes: set[asyncio.Task[None]] = field(default_factory=set)  # measurements being recorded
    saving: asyncio.Lock = field(default_factory=asyncio.Lock)
    lingering: set[str] = field(default_factory=set)  # targets whose candidate outlives them
    identity: str = ""  # the ServiceAccount the App is applied as: its analyses run as it too
    # each target's size at the last pass (None: its HPA sizes it), for a fast restore
    sizes: dict[str, int | None] = field(default_factory=dict)

    @property
    def moving(self) -> bool:
        """True while a rollout runs, or a promoted candidate waits out its scale-down delay:
        each poke must give a full pass."""
        return bool(self.lingering) or any(s.phase.active for s in (self.statuses or {}).values())

    def stop(self) -> None:
        for task in [*self.tasks.values(), *self.writes]:
            task.cancel()
        self.tasks.clear()

    async def save(self, rollback: Mapping[str, str] | None = None) -> None:
        """Write every target's status, serialised so an older write never lands last
        (``rollback``: a rollback asked for, written with them)."""
        async with self.saving:
            current = {key: s.to_dict() for key, s in (self.statuses or {}).items()}
            await self.outlet.save(current, rollback)


def rollback_request(status: RolloutStatus, abort: Abort) -> dict[str, str]:
    """The rollback an abort asks for, as ``status.pendingRollback`` keeps it."""
    return {
        "reason": abort.reason,
        "evidence": "\n".join(abort.evidence) or abort.reason,
        "actor": abort.actor,
        "revision": status.candidate.revision if status.candidate else "",
    }


async def abort_candidate(
    rollouts: AppRollouts, spec: DeliverySpec, status: RolloutStatus, abort: Abort
) -> None:
    """Hand an aborted candidate over to rollback: the ONE place delivery asks for it.

    The machine has already put the target back on stable (the candidate is taken down by
    this very pass). The rest (the whole App back on its last good render, the bad commit
    quarantined, its failing commit status and revert pull request) is
    ``tether.delivery.rollback.abort`` (decision 0020), run through the outlet once this pass
    has ended, with the analysis' evidence. The request was saved with the Aborted status
    (``AppRollouts.save``), so a replica killed before it runs leaves it to the next one."""
    candidate = status.candidate
    await rollouts.outlet.audit(
        spec.target.key,
        "abort",
        {
            "reason": abort.reason,
            "evidence": list(abort.evidence),
            "actor": abort.actor,
            "revision": candidate.revision if candidate else "",
            "digest": candidate.digest if candidate else "",
            **(abort.request.provenance() if abort.request else {}),
        },
    )
    rollouts.outlet.rollback(rollback_request(status, abort))


class DeliveryRunner:
    """Observes, advances and acts for every App with ``spec.delivery`` in this replica."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def shape(
        self,
        rollouts: AppRollouts,
        specs: Sequence[DeliverySpec],
        request: RolloutRequest | None,
        revision: Revision,
        manifests: list[Manifest],
        templates: Sequence[Manifest] = (),
    ) -> list[Manifest]:
        """The pass's render shaped for each target's next status (written first).
        ``templates``: the render's AnalysisTemplates, already taken out of ``manifests``."""
        rollouts.templates = list(templates)
        now = datetime.now(UTC)
        if rollouts.statuses is None:
            loaded = await rollouts.outlet.load()
            rollouts.statuses = {
                key: status
                for key, raw in loaded.items()
                if (status := RolloutStatus.of(raw)) is not None
            }
        resource = await self.client.resource("apps/v1", "Deployment")
        await self._drop_left(resource, rollouts, {spec.target.key for spec in specs})
        lives: dict[str, dict[str, Any] | None] = {}
        actions: list[tuple[DeliverySpec, Action]] = []
        for spec in specs:
            head = find_target(manifests, spec)
            if head is None:
                continue
            live = await self.client.get(resource, rollouts.namespace, spec.target.name)
            candidate = await self.client.get(resource, rollouts.namespace, spec.candidate_name)
            lives[spec.target.key] = live
            sized = autoscaled_replicas(manifests, spec, live)
            observations = _observe(spec, rollouts, head, revision, live, candidate, request, sized)
            rollouts.sizes[spec.target.key] = observations.total if sized is None else None
            machine = routing.machine_spec(spec)
            step = advance(machine, rollouts.statuses.get(spec.target.key), observations)
            rollouts.statuses[spec.target.key] = step.status
            actions.extend((spec, action) for action in step.actions)
            kept = routing.candidate_kept_for(spec, step.status, candidate, now)
            if kept > 0:
                rollouts.lingering.add(spec.target.key)
                rollouts.outlet.poke(kept, f"scale-down delay of {spec.target.key}")
                continue
            rollouts.lingering.discard(spec.target.key)
            if not step.status.phase.active and candidate is not None:
                await self._take_down(resource, rollouts.namespace, spec, candidate)
        # an abort's rollback is recorded with the Aborted status, before anything is applied
        rollback = next(
            (
                rollback_request(rollouts.statuses[s.target.key], a)
                for s, a in actions
                if isinstance(a, Abort)
            ),
            None,
        )
        await rollouts.save(rollback)
        for spec, action in actions:
            await self._act(rollouts, spec, action)
        self._cancel_unwanted(rollouts)
        for spec in specs:
            status = rollouts.statuses.get(spec.target.key)
            if status is None or find_target(manifests, spec) is None:
                continue
            rollouts.outlet.observe(spec.target.key, status)
            live = lives.get(spec.target.key)
            stable = stable_template(live)
            lingering = spec.target.key in rollouts.lingering
            sized = autoscaled_replicas(manifests, spec, live)
            manifests = routing.shape_deployments(manifests, spec, status, stable, lingering, sized)
            manifests = await routing.shape_traffic(
                self.client, rollouts.namespace, spec, status, manifests, lingering
            )
        return manifests

    async def _drop_left(self, resource: Resource, rollouts: AppRollouts, wanted: set[str]) -> None:
        """Targets that left ``spec.delivery``: their status and metrics dropped, and the
        candidate Deployment the engine made for them taken down (their route and Services go
        back to Git's as this pass applies them unshaped). The App's status loses them with
        the next write (``AppRollouts.save``)."""
        assert rollouts.statuses is not None
        for key in [key for key in rollouts.statuses if key not in wanted]:
            del rollouts.statuses[key]
            rollouts.lingering.discard(key)
            rollouts.outlet.forget(key)
            name = key.partition("/")[2]
            for suffix, track in CANDIDATE_KINDS:
                live = await self.client.get(resource, rollouts.namespace, name + suffix)
                labels = ((live or {}).get("metadata") or {}).get("labels") or {}
                if labels.get(ROLLOUT_LABEL) == name and labels.get(TRACK_LABEL) == track:
                    await self.client.delete(resource, rollouts.namespace, name + suffix)
            message = f"{key} left spec.delivery: its rollout status and candidate were removed"
            await rollouts.outlet.event("Normal", "RolloutRemoved", message)

    async def _take_down(
        self, resource: Resource, namespace: str, spec: DeliverySpec, live: dict[str, Any]
    ) -> None:
        """Delete the candidate Deployment (only one Tether derived: it carries the track
        label); the inventory prune would too, but not for an App that does not prune."""
        labels = (live.get("metadata") or {}).get("labels") or {}
        if labels.get(TRACK_LABEL) == spec.track:
            await self.client.delete(resource, namespace, spec.candidate_name)

    async def _act(self, rollouts: AppRollouts, spec: DeliverySpec, action: Action) -> None:
        key = spec.target.key
        outlet = rollouts.outlet
        if isinstance(action, Event):
            await outlet.event(action.type, action.reason, action.message)
        elif isinstance(action, Alert):
            outlet.alert(action.event, action.severity, action.summary)
        elif isinstance(action, Decision):
            await outlet.audit(key, "decision", _decision_record(action))
        elif isinstance(action, WakeUp):
            outlet.poke(action.after, f"rollout of {key}")
        elif isinstance(action, StartAnalysis):
            self._start(
                rollouts, spec, "analysis", action.step, self._analyse(rollouts, spec, action)
            )
        elif isinstance(action, CallWebhook):
            self._start(rollouts, spec, "webhook", action.step, self._gate(rollouts, spec, action))
        else:
            assert rollouts.statuses is not None
            await abort_candidate(rollouts, spec, rollouts.statuses[key], action)

    def _start(
        self,
        rollouts: AppRollouts,
        spec: DeliverySpec,
        kind: str,
        step: int,
        work: Coroutine[Any, Any, None],
    ) -> None:
        """Run ``work`` in the background unless the same work already runs."""
        name = _task_name(rollouts, spec, kind, step)
        running = rollouts.tasks.get(name)
        if running is not None and not running.done():
            work.close()
            return
        rollouts.tasks[name] = asyncio.create_task(work, name=f"{rollouts.app} {name}")

    def _cancel_unwanted(self, rollouts: AppRollouts) -> None:
        """Stop background work for a step or candidate the rollout has left."""
        wanted = set()
        for key, status in (rollouts.statuses or {}).items():
            digest = status.candidate.digest if status.candidate else ""
            if status.phase.active:
                wanted |= {
                    f"{key}:{digest}:{status.step}:analysis",
                    f"{key}:{digest}:{status.step}:webhook",
                }
        for name in list(rollouts.tasks):
            task = rollouts.tasks[name]
            if name not in wanted or task.done():
                task.cancel()
                del rollouts.tasks[name]

    async def _analyse(
        self, rollouts: AppRollouts, spec: DeliverySpec, start: StartAnalysis
    ) -> None:
        key = spec.target.key
        status = _status(rollouts, key)
        digest = status.candidate.digest if status.candidate else ""
        previous = status.analysis.measurements if status.analysis else ()

        def on_record(record: dict[str, Any]) -> None:
            current = _status(rollouts, key)
            if not _same_step(current, digest, start.step) or current.analysis is None:
                return
            analysis = replace(
                current.analysis, measurements=(*current.analysis.measurements, record)
            )
            _set_status(rollouts, key, replace(current, analysis=analysis))
            writing = asyncio.get_running_loop().create_task(_record(rollouts, key, record))
            rollouts.writes.add(writing)
            writing.add_done_callback(rollouts.writes.discard)

        client = self.client.impersonating(rollouts.identity) if rollouts.identity else self.client
        jobs, labels = KubeJobs(client), job_labels(rollouts.app, digest, start.step)
        run = f"{spec.target.name}-{digest[:7]}-s{start.step}"
        hashes = (
            await pod_template_hashes(
                self.client, rollouts.namespace, spec.target.name, spec.candidate_name
            )
            if start.analysis.wants_hashes
            else PodTemplateHashes()
        )
        wiring = AnalysisWiring(
            JobContext(jobs, rollouts.namespace, run, labels),
            SecretArgs(client, rollouts.app.partition("/")[0]).read,
            hashes,
            await self._target(rollouts, spec) if start.analysis.wants_metadata else None,
        )
        finished = False
        try:
            result = await run_step_analysis(
                start.step, start.analysis, rollouts.templates, previous, on_record, wiring
            )
            finished = True
        except Exception:  # a bug must not leave the rollout waiting forever
            log.exception("analysis of %s in %s crashed", key, rollouts.app)
            result = AnalysisStatus(
                start.step, "-".join(start.analysis.templates), "Error", previous, ("crashed",)
            )
            finished = True
        finally:
            # Jobs go with the verdict, or with the step left (an abort, a newer candidate);
            # a replica that merely stops leading leaves them to the next leader to adopt.
            if finished or not _same_step(_status(rollouts, key), digest, start.step):
                await _delete_jobs(rollouts, jobs, labels)
        current = _status(rollouts, key)
        if _same_step(current, digest, start.step):
            _set_status(rollouts, key, replace(current, analysis=result))
            await rollouts.save()
            still = _same_step(_status(rollouts, key), digest, start.step)  # after the write
            if still and aborts_at_once(routing.machine_spec(spec), result):
                await self._restore_stable(rollouts, spec)
            rollouts.outlet.poke(0, f"analysis of {key} finished: {result.phase}")

    async def _restore_stable(self, rollouts: AppRollouts, spec: DeliverySpec) -> None:
        """The fast path of a failed analysis (decision 0032): stable back on every replica
        and the candidate deleted as soon as the verdict is saved, before the pass that
        records the abort (status, Event, audit rows, alert, rollback and quarantine). The
        verdict is in the App's status first, so a replica killed right after this still
        aborts once on the next pass, which applies the same sizes. Done as the App's
        identity, as its pass applies; a failure is logged and left to that pass."""
        key = spec.target.key
        if key not in rollouts.sizes:
            return  # no pass of this replica sized it yet: the pass does it all
        client = self.client.impersonating(rollouts.identity) if rollouts.identity else self.client
        rollouts.outlet.superseding(
            [
                ObjectRef("apps", spec.target.kind, rollouts.namespace, name)
                for name in (spec.target.name, spec.candidate_name)
            ]
        )
        try:
            done = await routing.restore_stable(
                client, rollouts.namespace, spec, rollouts.sizes[key]
            )
        except TetherError as error:
            log.warning("could not restore the stable of %s in %s: %s", key, rollouts.app, error)
            return
        if done:
            log.info("%s: %s restored to stable ahead of its abort", rollouts.app, key)
            rollouts.outlet.restored(key)

    async def _target(self, rollouts: AppRollouts, spec: DeliverySpec) -> dict[str, Any] | None:
        """The live Git name's Deployment (``valueFrom.fieldRef`` arguments read its metadata:
        Git's, as the engine applied it), read with the agent's own client as the hashes are."""
        resource = await self.client.resource("apps/v1", spec.target.kind)
        return await self.client.get(resource, rollouts.namespace, spec.target.name)

    async def _gate(self, rollouts: AppRollouts, spec: DeliverySpec, call: CallWebhook) -> None:
        key = spec.target.key
        status = _status(rollouts, key)
        candidate = status.candidate or Version("", "")
        earlier = status.gate if status.gate and status.gate.step == call.step else None

        async def calling(gate: GateStatus) -> None:
            """Each call counted in status before it is sent (a new leader goes on from it)."""
            current = _status(rollouts, key)
            if _same_step(current, candidate.digest, call.step):
                _set_status(rollouts, key, replace(current, gate=gate))
                await rollouts.save()

        answer: GateStatus = await ask_gate(
            call.webhook,
            GateCall(rollouts.app, key, candidate.revision, call.step, status.weight),
            earlier,
            calling,
        )
        current = _status(rollouts, key)
        if _same_step(current, candidate.digest, call.step):
            _set_status(rollouts, key, replace(current, gate=answer))
            await rollouts.save()
            rollouts.outlet.poke(0, f"webhook gate of {key} answered")


def _observe(
    spec: DeliverySpec,
    rollouts: AppRollouts,
    head: Manifest,
    revision: Revision,
    live: dict[str, Any] | None,
    candidate: dict[str, Any] | None,
    request: RolloutRequest | None,
    live_replicas: int | None = None,
) -> Observations:
    head_version = Version(revision.commit, template_digest(head))
    total = total_replicas(head, live_replicas)
    known = (rollouts.statuses or {}).get(spec.target.key)
    return Observations(
        now=datetime.now(UTC),
        head=head_version,
        serving=_serving(live, head_version, known),
        total=total,
        candidate_available=_available(candidate, head_version.digest, None),
        candidate_ready=int(((candidate or {}).get("status") or {}).get("readyReplicas") or 0),
        promoted_ready=_available(live, head_version.digest, total) >= total,
        promoted_ready_replicas=_ready_at(live, head_version.digest),
        request=request,
    )


def _serving(
    live: dict[str, Any] | None, head: Version, known: RolloutStatus | None
) -> Version | None:
    """What the Git name serves: None when it does not exist; the stable version the status
    records; the head when there is no status yet (delivery just set: what runs is adopted)."""
    if live is None:
        return None
    if known is not None and known.stable is not None:
        return known.stable
    return head


def _available(live: dict[str, Any] | None, digest: str, replicas: int | None) -> int:
    """Available replicas of ``live`` when it runs the template ``digest`` and its controller
    has seen its latest spec (``replicas``: also require that size); else 0."""
    if live is None:
        return 0
    metadata, spec, status = (
        live.get("metadata") or {},
        live.get("spec") or {},
        live.get("status") or {},
    )
    if (metadata.get("annotations") or {}).get(TEMPLATE_DIGEST_ANNOTATION) != digest:
        return 0
    if int(status.get("observedGeneration", 0)) < int(metadata.get("generation", 0)):
        return 0
    wanted = int(spec.get("replicas", 1))
    if replicas is not None and wanted != replicas:
        return 0
    updated = int(status.get("updatedReplicas", 0))
    if int(status.get("replicas", 0)) > updated:  # old pods still there
        return 0
    return min(updated, int(status.get("availableReplicas", 0)))


def _ready_at(live: dict[str, Any] | None, digest: str) -> int:
    """Ready replicas of ``live`` at the template ``digest`` (its updated ones), for a message
    on a promotion that does not finish; 0 when it was not given that template."""
    if live is None:
        return 0
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    if annotations.get(TEMPLATE_DIGEST_ANNOTATION) != digest:
        return 0
    status = live.get("status") or {}
    return min(int(status.get("updatedReplicas", 0)), int(status.get("readyReplicas", 0)))


def _decision_record(decision: Decision) -> dict[str, Any]:
    return {
        "decision": decision.decision,
        "actor": decision.actor,
        "reason": decision.reason,
        "step": decision.step,
        "revision": decision.revision,
        **(decision.request.provenance() if decision.request else {}),
    }


def _task_name(rollouts: AppRollouts, spec: DeliverySpec, kind: str, step: int) -> str:
    status = _status(rollouts, spec.target.key)
    digest = status.candidate.digest if status.candidate else ""
    return f"{spec.target.key}:{digest}:{step}:{kind}"


def _status(rollouts: AppRollouts, key: str) -> RolloutStatus:
    assert rollouts.statuses is not None
    return rollouts.statuses.get(key) or RolloutStatus()


def _set_status(rollouts: AppRollouts, key: str, status: RolloutStatus) -> None:
    assert rollouts.statuses is not None
    rollouts.statuses[key] = status


def _same_step(status: RolloutStatus, digest: str, step: int) -> bool:
    """True while ``status`` is still at ``step`` of the candidate ``digest``."""
    candidate = status.candidate.digest if status.candidate else ""
    return status.phase.active and candidate == digest and status.step == step


async def _delete_jobs(rollouts: AppRollouts, jobs: KubeJobs, labels: Mapping[str, str]) -> None:
    """Delete an analysis' Jobs; a failure is logged (a Job left is clutter, not a verdict)."""
    try:
        await delete_jobs(jobs, rollouts.namespace, labels)
    except TetherError as error:
        log.warning("could not delete the analysis Jobs of %s: %s", rollouts.app, error)


async def _record(rollouts: AppRollouts, key: str, record: dict[str, Any]) -> None:
    """A measurement: into the status (first: what a resume goes on from), then the audit
    trail (the outlet logs a failure to write it)."""
    await rollouts.save()
    await rollouts.outlet.audit(key, "measurement", record)
