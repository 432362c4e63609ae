"""The sync engine: plan → staged apply → prune → health, against one cluster.

Stage one (CRDs and Namespaces) is applied and waited for (Established / Active) before the
rest, because the rest may need them. Within a stage, every object is dry-run first and the
stage is written only if all of it passed. Unchanged objects are never written.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether import health
from tether.cluster.client import ApiError, KubeClient, Resource
from tether.core import (
    Action,
    ChangeSet,
    HealthReport,
    HealthStatus,
    Manifest,
    ObjectHealth,
    ObjectRef,
    kubeyaml,
)
from tether.core.hooks import HookPhase, hook_phase, hook_weight
from tether.core.inventory import PART_OF_LABEL, PRUNE_ANNOTATION, Inventory, split_group_kind
from tether.errors import (
    ClusterError,
    HealthTimeout,
    PruneRefused,
    TenancyViolation,
    TetherError,
)
from tether.reconcile import plan as planning
from tether.reconcile.finished import FinishedJobs
from tether.reconcile.options import SyncOptions

_ESTABLISH_TIMEOUT = 60.0
_HOOK_TIMEOUT = (
    300.0  # a chart's hooks are waited for even when the sync does not wait (--timeout 0)
)
_POLL = 0.5
# Cluster-wide health checks: a ConfigMap in the inventory namespace, its key ``checks.yaml``
# holding a YAML list of checks in the form of an App's ``spec.health.checks``.
HEALTH_CHECKS_CONFIGMAP = "tether-health-checks"
HEALTH_CHECKS_KEY = "checks.yaml"
_FORBIDDEN = 403


@dataclass
class EngineResult:
    """What one pass did: the ChangeSet, health after it, and per-object diffs inputs."""

    changes: ChangeSet
    plan: planning.Plan
    health: HealthReport | None = None
    prune_candidates: list[tuple[ObjectRef, dict[str, Any]]] = field(default_factory=list)


class SyncEngine:
    """Applies one app's rendered manifests to the cluster ``client`` talks to."""

    def __init__(
        self, client: KubeClient, options: SyncOptions, inventory_client: KubeClient | None = None
    ) -> None:
        """``client`` writes the app's objects (it may impersonate a tenant's ServiceAccount);
        ``inventory_client`` keeps the inventory with Tether's own identity (default: ``client``)."""
        self.client = client
        self.options = options
        self.inventory_client = inventory_client or client
        self._health_policy: health.HealthPolicy | None = None
        # hook Jobs seen finishing by a watch: their outcome stands once they are deleted
        self._finished_hooks: dict[ObjectRef, tuple[HealthStatus, str]] = {}

    async def _parent_resource(self) -> Resource:
        return await self.inventory_client.resource("v1", "ConfigMap")

    async def load_inventory(self) -> Inventory | None:
        """The app's recorded inventory, or None on its first sync."""
        parent = await self.inventory_client.get(
            await self._parent_resource(), self.options.inventory_namespace, self.options.app
        )
        return Inventory.from_parent(parent) if parent else None

    async def plan(self, manifests: list[Manifest]) -> tuple[planning.Plan, Inventory | None]:
        """Resolve, read live state and dry-run everything that can be dry-run now."""
        inventory = Inventory(self.options.app, self.options.inventory_namespace)
        prepared = planning.prepare(manifests, inventory)
        plan = planning.Plan([planning.PlannedObject(m) for m in prepared])
        new_namespaces = {
            obj.ref.name
            for obj in plan.objects
            if obj.manifest.is_namespace and not await self._namespace_exists(obj.ref.name)
        }
        await planning.resolve(self.client, plan, self.options.namespace, new_namespaces)
        planning.check_duplicates(plan)
        if self.options.tenancy is not None:
            plan.errors.extend(planning.check_tenancy(plan, self.options.tenancy))
            if plan.errors:
                raise TenancyViolation(
                    f"app {self.options.app!r}: nothing was applied, refused by tenancy rules:\n  "
                    + "\n  ".join(plan.errors[:20])
                )
        ready = [o for o in plan.objects if not o.deferred and o.resource is not None]
        await planning.fetch_live(self.client, ready)
        planning.raise_on_conflicts(planning.check_ownership(ready, inventory))
        await planning.dry_run(self.client, plan, ready, self.options.ignore)
        previous = await self.load_inventory()
        for job in planning.rest_vanished_jobs(plan, previous is not None):
            self._finished_hooks[job.ref] = (
                HealthStatus.HEALTHY,
                "ran with an earlier sync, then deleted (ttlSecondsAfterFinished)",
            )
        return plan, previous

    async def _namespace_exists(self, name: str) -> bool:
        """Whether Namespace ``name`` exists. When the app's identity may not read it, it is
        taken as existing: the tenancy check, or the dry-run of the Namespace, then refuses it
        with the reason instead of this read failing first."""
        try:
            found = await self.client.get(await self.client.resource("v1", "Namespace"), "", name)
        except ApiError as error:
            if error.status != _FORBIDDEN:
                raise
            return True
        return found is not None

    async def sync(
        self, manifests: list[Manifest], source: dict[str, str] | None = None
    ) -> EngineResult:
        """One full pass. Raises on refusal; the ChangeSet says what was written before that.

        ``source`` (url, path, ref, revision) is recorded in the inventory parent for ``status``.
        """
        if not manifests and not self.options.allow_empty:
            raise PruneRefused(
                f"app {self.options.app!r}: the render produced no objects; refusing to sync (and "
                "prune everything). Pass --allow-empty if the app really should be empty"
            )
        await self.health_policy()  # a health check that does not compile stops the sync here
        plan, previous = await self.plan(manifests)
        _raise_plan_errors(plan)
        changes = ChangeSet(dry_run=self.options.dry_run)
        try:
            return await self._execute(plan, previous, changes, source or {})
        except TetherError as error:
            error.changes = changes
            raise

    async def _execute(
        self,
        plan: planning.Plan,
        previous: Inventory | None,
        changes: ChangeSet,
        source: dict[str, str],
    ) -> EngineResult:
        result = EngineResult(changes, plan)
        desired = Inventory.of(
            self.options.app, [o.ref for o in plan.objects], self.options.inventory_namespace
        ).with_source(source)
        if self.options.dry_run:
            self._record(plan.objects, changes)
            result.prune_candidates = (
                await self.prune_candidates(previous, plan) if self.options.prune else []
            )
            for ref, _ in result.prune_candidates:
                changes.add(ref, Action.PRUNED, "dry run")
            return result
        await self._ensure_inventory_namespace()
        await self._write_parent(desired.union(previous) if previous else desired)
        await self._apply(plan.stage(first=True), changes)
        await self._wait_first_stage(plan.stage(first=True))
        if _changed_crds(changes):
            self.client.forget_discovery()  # served kinds changed: the next chart rediscovers
        second = plan.stage(first=False)
        deferred = [o for o in second if o.deferred]
        if deferred:
            await planning.resolve_deferred(self.client, plan, self.options.namespace)
            await planning.fetch_live(self.client, deferred)
            planning.raise_on_conflicts(planning.check_ownership(deferred, desired))
            await planning.dry_run(self.client, plan, deferred, self.options.ignore)
            _raise_plan_errors(plan, after_first_stage=True)
        pre, main, post = _by_hook_phase(second)
        await self._run_hooks(pre, HookPhase.PRE, changes)
        await self._apply(main, changes)
        if self.options.prune:
            candidates = await self.prune_candidates(previous, plan)
            await self._prune(candidates, changes)
            await self._write_parent(desired)
        post_ids = {id(o) for o in post}
        settled = [o for o in plan.objects if o.resource and id(o) not in post_ids]
        if self.options.timeout > 0:
            result.health = await self.wait_healthy(settled)
        if post and (result.health is None or result.health.status is HealthStatus.HEALTHY):
            await self._run_hooks(post, HookPhase.POST, changes)
            if self.options.timeout > 0:
                result.health = await self.assess([o for o in plan.objects if o.resource])
        elif post:
            for obj in post:
                changes.add(obj.ref, Action.SKIPPED, "post-install hook: the app is not healthy")
        return result

    async def _run_hooks(
        self, hooks: list[planning.PlannedObject], phase: HookPhase, changes: ChangeSet
    ) -> None:
        """Apply a chart's hooks of one phase, lowest ``helm.sh/hook-weight`` first, each weight
        waited for until healthy (a Job: complete) before the next (decision record 0016)."""
        timeout = self.options.timeout or _HOOK_TIMEOUT
        for weight in sorted({hook_weight(o.body) for o in hooks}):
            group = [o for o in hooks if hook_weight(o.body) == weight]
            jobs = [o for o in group if o.ref.group == "batch" and o.ref.kind == "Job"]
            if jobs and jobs[0].resource is not None:
                # a Job may finish and be deleted between two polls (ttlSecondsAfterFinished)
                refs = [o.ref for o in jobs]
                async with FinishedJobs(
                    self.client,
                    jobs[0].resource,
                    refs,
                    self._member_selector,
                    self._finished_hooks,
                ):
                    await self._apply(group, changes)
                    report = await self.wait_healthy(group, timeout)
            else:
                await self._apply(group, changes)
                report = await self.wait_healthy(group, timeout)
            if report.status is not HealthStatus.HEALTHY:
                listed = "; ".join(
                    f"{o.ref} {o.status.value}: {o.message}" for o in report.not_healthy()[:5]
                )
                rest = (
                    "the chart's other objects were not applied"
                    if phase is HookPhase.PRE
                    else "the app itself is applied and healthy"
                )
                raise HealthTimeout(f"{phase.value}-install/upgrade hook failed: {listed}; {rest}")

    # -- apply -------------------------------------------------------------------------------

    def _record(self, objects: list[planning.PlannedObject], changes: ChangeSet) -> None:
        for obj in objects:
            reason = "" if obj.checked else "waits for a CRD or Namespace created by this sync"
            changes.add(obj.ref, obj.action if obj.checked else Action.SKIPPED, reason)

    async def _apply(self, objects: list[planning.PlannedObject], changes: ChangeSet) -> None:
        async def one(obj: planning.PlannedObject) -> None:
            assert obj.resource is not None
            if obj.recreate:
                await self._delete_and_wait(obj)
            if obj.action in (Action.CREATED, Action.CONFIGURED):
                await self.client.apply(obj.resource, obj.body, dry_run=False)

        outcomes = await asyncio.gather(*(one(o) for o in objects), return_exceptions=True)
        failures = []
        for obj, outcome in zip(objects, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                said = planning.refusal(obj, outcome)
                changes.add(obj.ref, Action.FAILED, said)
                failures.append(f"{obj.ref} ({obj.manifest.source}): {said}")
            else:
                changes.add(obj.ref, obj.action)
        if failures:
            raise ClusterError("apply failed: " + "; ".join(failures))

    async def _delete_and_wait(self, obj: planning.PlannedObject) -> None:
        """Delete a chart hook whose change the server refuses as immutable, and wait until it
        is gone, so it can be created again (decision record 0016)."""
        assert obj.resource is not None
        await self.client.delete(obj.resource, obj.ref.namespace, obj.ref.name)
        deadline = time.monotonic() + _ESTABLISH_TIMEOUT
        while await self.client.get(obj.resource, obj.ref.namespace, obj.ref.name) is not None:
            if time.monotonic() > deadline:
                raise HealthTimeout(
                    f"{obj.ref}: the hook was deleted to be re-created, but it was still there "
                    f"after {_ESTABLISH_TIMEOUT:.0f}s (a finalizer?)"
                )
            await asyncio.sleep(_POLL)

    async def _ensure_inventory_namespace(self) -> None:
        namespace = self.options.inventory_namespace
        resource = await self.inventory_client.resource("v1", "Namespace")
        if await self.inventory_client.get(resource, "", namespace) is None:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            await self.inventory_client.apply(resource, body, dry_run=False)

    async def _write_parent(self, inventory: Inventory) -> None:
        await self.inventory_client.apply(
            await self._parent_resource(), inventory.parent(), dry_run=False
        )

    async def _wait_first_stage(self, objects: list[planning.PlannedObject]) -> None:
        """CRDs Established and Namespaces Active before anything uses them."""
        pending = [o for o in objects if o.resource is not None]
        deadline = time.monotonic() + _ESTABLISH_TIMEOUT
        while pending:
            live = await asyncio.gather(
                *(self.client.get(o.resource, "", o.ref.name) for o in pending if o.resource)
            )
            pending = [
                o
                for o, obj in zip(pending, live, strict=True)
                if health.assess(o.ref, obj).status is not HealthStatus.HEALTHY
            ]
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(str(o.ref) for o in pending)
                raise HealthTimeout(
                    f"timed out after {_ESTABLISH_TIMEOUT:.0f}s waiting for {names} to be established"
                )
            await asyncio.sleep(0.2)

    # -- prune -------------------------------------------------------------------------------

    async def prune_candidates(
        self, previous: Inventory | None, plan: planning.Plan
    ) -> list[tuple[ObjectRef, dict[str, Any]]]:
        """Members of the previous inventory that the new render no longer has."""
        if previous is None:
            return []
        desired = {o.ref for o in plan.objects}
        selector = f"{PART_OF_LABEL}={previous.id}"
        found: list[tuple[ObjectRef, dict[str, Any]]] = []
        for group_kind in sorted(previous.group_kinds):
            group, kind = split_group_kind(group_kind)
            try:
                resource = await self.client.resource_for_group_kind(group, kind)
            except ClusterError:
                continue  # the kind is gone (its CRD was deleted), so are its objects
            namespaces = sorted(previous.namespaces) if resource.namespaced else [""]
            for namespace in namespaces:
                for item in await self._members(resource, namespace, selector, previous):
                    ref = ObjectRef.of(item)
                    if ref not in desired and not _prune_disabled(item):
                        found.append((ref, item))
        return found

    async def _members(
        self, resource: Resource, namespace: str, selector: str, previous: Inventory
    ) -> list[dict[str, Any]]:
        """The app's objects of ``resource`` in ``namespace``. The inventory's own namespace is
        a member namespace by the ApplySet convention even when the app put nothing there; an
        app identity that may not list it there (a team's ServiceAccount in tether-system) has
        no members there."""
        try:
            return await self.client.list(resource, namespace, selector)
        except ApiError as error:
            if error.status == _FORBIDDEN and namespace == previous.namespace:
                return []
            raise

    async def _prune(
        self, candidates: list[tuple[ObjectRef, dict[str, Any]]], changes: ChangeSet
    ) -> None:
        """Delete candidates: namespaced objects first, then cluster-scoped, CRDs last."""

        def order(entry: tuple[ObjectRef, dict[str, Any]]) -> int:
            ref = entry[0]
            return (
                2 if ref.kind == "CustomResourceDefinition" else 1 if ref.kind == "Namespace" else 0
            )

        for ref, item in sorted(candidates, key=order):
            resource = await self.client.resource(item["apiVersion"], item["kind"])
            await self.client.delete(resource, ref.namespace, ref.name)
            changes.add(ref, Action.PRUNED)
        if _changed_crds(changes):
            self.client.forget_discovery()

    async def delete_app(self) -> ChangeSet:
        """Delete everything the app's inventory holds (except objects marked
        ``tether.dev/prune: disabled``), then the inventory itself: what deleting an App does."""
        changes = ChangeSet(dry_run=self.options.dry_run)
        previous = await self.load_inventory()
        if previous is None:
            return changes
        candidates = await self.prune_candidates(previous, planning.Plan([]))
        try:
            await self._prune(candidates, changes)
        except TetherError as error:
            error.changes = changes
            raise
        await self.inventory_client.delete(
            await self._parent_resource(), self.options.inventory_namespace, self.options.app
        )
        return changes

    # -- health ------------------------------------------------------------------------------

    async def health_policy(self) -> health.HealthPolicy:
        """The rules beyond the built-in ones: the cluster-wide checks, then the App's on top.

        Read once per engine. Raises InvalidHealthCheck, naming the ConfigMap or the App and the
        check, when an expression does not compile.
        """
        if self._health_policy is None:
            policy = health.HealthPolicy(grace=self.options.health_grace)
            namespace = self.options.inventory_namespace
            config = await self.inventory_client.get(
                await self._parent_resource(), namespace, HEALTH_CHECKS_CONFIGMAP
            )
            text = ((config or {}).get("data") or {}).get(HEALTH_CHECKS_KEY)
            if text:
                where = f"ConfigMap {namespace}/{HEALTH_CHECKS_CONFIGMAP} key {HEALTH_CHECKS_KEY}"
                policy = policy.with_checks(_check_list(text, where), where)
            if self.options.health_checks:
                where = f"app {self.options.app!r} spec.health.checks"
                policy = policy.with_checks(list(self.options.health_checks), where)
            self._health_policy = policy
        return self._health_policy

    async def assess(self, objects: list[planning.PlannedObject]) -> HealthReport:
        """The health of ``objects`` now, reading each kind once (see ``_read_live``)."""
        policy = await self.health_policy()
        live = await self._read_live(objects)
        report = health.assess_all([(o.ref, live.get(o.ref)) for o in objects], policy)
        return _with_finished(report, self._finished_hooks)

    @property
    def _member_selector(self) -> str:
        """The label selector of the app's members (their ApplySet label)."""
        return f"{PART_OF_LABEL}={Inventory(self.options.app, self.options.inventory_namespace).id}"

    async def _read_live(
        self, objects: list[planning.PlannedObject]
    ) -> dict[ObjectRef, dict[str, Any]]:
        """The live objects: one LIST per kind and namespace, selecting the app's members by the
        ApplySet label, instead of one GET per object. An object the list does not return (its
        label was removed by hand, or the app's identity may not list its kind) is fetched by
        name, so it is Missing only if it is gone."""
        selector = self._member_selector
        groups: dict[tuple[Resource, str], list[planning.PlannedObject]] = defaultdict(list)
        for obj in objects:
            assert obj.resource is not None
            groups[(obj.resource, obj.ref.namespace if obj.resource.namespaced else "")].append(obj)
        found: dict[ObjectRef, dict[str, Any]] = {}

        async def one_kind(resource: Resource, namespace: str) -> None:
            try:
                items = await self.client.list(resource, namespace, selector)
            except ApiError as error:
                if error.status != _FORBIDDEN:
                    raise
                return  # the app's identity may get but not list this kind: GETs below
            for item in items:
                found[ObjectRef.of(item)] = item

        await asyncio.gather(*(one_kind(resource, ns) for resource, ns in groups))
        unlisted = [o for members in groups.values() for o in members if o.ref not in found]

        async def by_name(obj: planning.PlannedObject) -> None:
            assert obj.resource is not None
            item = await self.client.get(obj.resource, obj.ref.namespace, obj.ref.name)
            if item is not None:
                found[obj.ref] = item

        await asyncio.gather(*(by_name(o) for o in unlisted))
        return found

    async def wait_healthy(
        self, objects: list[planning.PlannedObject], timeout: float | None = None
    ) -> HealthReport:
        """Poll until every object is Healthy in the same poll; the last report either way.

        Every object is re-checked on every poll: one that was Healthy can fall back (a pod
        crashing after its first start). The wait ends early when nothing is moving any more:
        no object is Progressing or Missing, at least one is Degraded or Unknown, and that has
        lasted a whole grace period; waiting longer would not change the verdict.
        """
        policy = await self.health_policy()
        deadline = time.monotonic() + (self.options.timeout if timeout is None else timeout)
        settled_since: float | None = None
        while True:
            report = await self.assess(objects)
            if report.status is HealthStatus.HEALTHY:
                return report
            now = time.monotonic()
            if _settled(report):
                settled_since = now if settled_since is None else settled_since
                if now - settled_since >= policy.grace:
                    return report
            else:
                settled_since = None
            if now >= deadline:
                return report
            await asyncio.sleep(_POLL)


def _by_hook_phase(
    objects: list[planning.PlannedObject],
) -> tuple[list[planning.PlannedObject], ...]:
    """``objects`` split into a chart's pre-hooks, the rest, and its post-hooks."""
    phases = [hook_phase(o.body) for o in objects]
    return (
        [o for o, p in zip(objects, phases, strict=True) if p is HookPhase.PRE],
        [o for o, p in zip(objects, phases, strict=True) if p is None],
        [o for o, p in zip(objects, phases, strict=True) if p is HookPhase.POST],
    )


def _settled(report: HealthReport) -> bool:
    """Nothing in ``report`` is still on its way: every object is Healthy, Degraded or Unknown."""
    moving = (HealthStatus.PROGRESSING, HealthStatus.MISSING)
    return all(o.status not in moving for o in report.objects)


def _check_list(text: str, where: str) -> list[object]:
    """The YAML list of health checks in a ConfigMap value."""
    try:
        entries = kubeyaml.load(text)
    except kubeyaml.YamlProblem as error:
        raise health.InvalidHealthCheck(
            f"{where}: not valid YAML (line {error.line}): {error.problem}"
        ) from None
    if not isinstance(entries, list):
        raise health.InvalidHealthCheck(f"{where}: must be a YAML list of health checks")
    return entries


def _prune_disabled(item: dict[str, Any]) -> bool:
    annotations = (item.get("metadata") or {}).get("annotations") or {}
    return annotations.get(PRUNE_ANNOTATION) == "disabled"


def _raise_plan_errors(plan: planning.Plan, after_first_stage: bool = False) -> None:
    if plan.errors:
        shown = plan.errors[:20]
        more = f"\n  … and {len(plan.errors) - 20} more" if len(plan.errors) > 20 else ""
        written = (
            "only CRDs and Namespaces were applied" if after_first_stage else "nothing was applied"
        )
        raise ClusterError(
            f"{written}: the server refused the dry-run of "
            f"{len(plan.errors)} object(s):\n  " + "\n  ".join(shown) + more
        )


def _with_finished(
    report: HealthReport, finished: Mapping[ObjectRef, tuple[HealthStatus, str]]
) -> HealthReport:
    """``report`` with each Missing Job that was seen finishing given that outcome."""
    return HealthReport(
        [
            ObjectHealth(seen.ref, *finished[seen.ref])
            if seen.status is HealthStatus.MISSING and seen.ref in finished
            else seen
            for seen in report.objects
        ]
    )


def _changed_crds(changes: ChangeSet) -> bool:
    """Whether a CRD was created, changed or pruned: what the server serves changed."""
    return any(
        change.ref.kind == "CustomResourceDefinition" and change.action.writes
        for change in changes.changes
    )
