"""The agent on real-world manifest sets (``tests/corpus/*``, see their ATTRIBUTION.md).

One agent process serves every case. For each case: the App syncs (Ready, with as many objects as
the corpus holds, and as kubectl finds under the app's label), stays in sync (``tether diff``
exits 0, Drifted is False, no DriftDetected event), heals one hand edit, and is deleted cleanly
(the App's finalizer deletes what it applied and its inventory). A last case is synced with
``tether sync`` first and then handed to an agent App of the same name, with nothing deleted or
recreated.

The expected objects are read from the corpus independently of Tether: plain files with PyYAML's
base loader (every scalar a string, so odd forms such as a bare ``=`` cannot trip it), and
kustomizations with ``kustomize build``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.agent.conftest import (
    AgentProcess,
    app_condition,
    apply_yaml,
    platform_project,
    wait_for,
)
from tests.conftest import GitRepo, Kubectl
from tether.cli.main import app as tether_cli
from tether.core import HealthStatus, ObjectRef
from tether.core.inventory import APP_LABEL, ID_LABEL, PART_OF_LABEL
from tether.devcluster.controlplane import DevCluster
from tether.devcluster.provision import ensure_binary
from tether.health import assess_all

pytestmark = pytest.mark.cluster

CORPUS = Path(__file__).parents[1] / "corpus"
INVENTORY_NAMESPACE = "tether-system"
SYNC_TIMEOUT = 180.0  # the largest corpus is ~1.3 MB of YAML, most of it CRD schemas
HEAL_TIMEOUT = 60.0
DELETE_TIMEOUT = 180.0

Key = tuple[str, str, str]  # (kind, namespace or "" when cluster-scoped, name)


@dataclass(frozen=True)
class HandEdit:
    """A person changing a field Tether set: ``kubectl patch --type=merge`` of ``target``."""

    target: str  # kubectl's TYPE/NAME
    namespace: str  # "" = the App's destination
    field: tuple[str, ...]
    value: Any

    def patch(self) -> str:
        body: Any = self.value
        for key in reversed(self.field):
            body = {key: body}
        return json.dumps(body)


@dataclass(frozen=True)
class Case:
    """One App over one corpus path."""

    name: str
    path: str  # inside the corpus repository (= tests/corpus)
    edit: HandEdit
    destination: str = ""  # spec.destination.namespace; "" = the App's namespace
    # Objects (refs containing one of these) that are not healthy here, and rightly so: the
    # controller that would make them healthy does not run on this cluster (kwok fakes kubelets,
    # not operators or a metrics server), or the upstream manifest itself is wrong.
    unhealthy_here: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        "kube-prometheus",
        "kube-prometheus/manifests",
        # a custom resource whose CRD the same sync created
        HandEdit("prometheus.monitoring.coreos.com/k8s", "monitoring", ("spec", "replicas"), 5),
        # no Prometheus operator here: its custom resources never get a status, and the PDB's
        # pods would come from the StatefulSet the operator creates; the metrics APIService's
        # backend (prometheus-adapter) never really runs on kwok nodes
        unhealthy_here=(
            "PodDisruptionBudget.policy/monitoring/prometheus-k8s",
            ".monitoring.coreos.com/",
            "APIService.apiregistration.k8s.io/v1beta1.metrics.k8s.io",
        ),
    ),
    Case(
        "argo-cd",
        "argo-cd/manifests",
        HandEdit("statefulset/argocd-application-controller", "argocd", ("spec", "replicas"), 3),
        destination="argocd",
    ),
    Case(
        "podinfo",
        "podinfo/deploy/webapp",
        HandEdit("horizontalpodautoscaler/frontend", "webapp", ("spec", "maxReplicas"), 10),
        # upstream's frontend HPA targets the backend Deployment, so the HPA controller reports
        # AmbiguousSelector for both (and there is no metrics server here)
        unhealthy_here=("HorizontalPodAutoscaler.autoscaling/webapp/",),
    ),
    Case(
        "ldap-staging",
        "kustomize-ldap/examples/ldap/overlays/staging",
        HandEdit("deployment/staging-ldap", "", ("spec", "replicas"), 5),
    ),
]

# The CLI-to-agent hand-over: a kustomize overlay whose objects all name their namespace.
HANDOVER = Case(
    "podinfo-production",
    "podinfo/deploy/overlays/production",
    HandEdit("deployment/frontend", "production", ("spec", "minReadySeconds"), 30),
)


# -- the corpus, read without Tether ---------------------------------------------------------


def _documents(text: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for doc in yaml.load_all(text, Loader=yaml.BaseLoader):
        if not doc:
            continue
        if doc["kind"].endswith("List") and "items" in doc:
            objects.extend(doc["items"])
        else:
            objects.append(doc)
    return objects


def corpus_objects(repo_root: Path, case: Case) -> list[dict[str, Any]]:
    """Every object the corpus path holds, as written (Lists expanded)."""
    root = repo_root / case.path
    if (root / "kustomization.yaml").exists():
        built = subprocess.run(
            [str(ensure_binary("kustomize")), "build", str(root)],
            capture_output=True,
            text=True,
            check=True,
        )
        return _documents(built.stdout)
    return [
        obj
        for path in sorted(root.rglob("*.y*ml"))
        for obj in _documents(path.read_text(encoding="utf-8"))
    ]


def expected_keys(
    objects: list[dict[str, Any]], namespaced: set[str], destination: str
) -> set[Key]:
    """Where the objects should be: a namespaced object naming no namespace goes to the App's
    destination (``namespaced`` holds the kinds the API server serves per namespace)."""
    found = set()
    for obj in objects:
        metadata = obj["metadata"]
        default = destination if obj["kind"] in namespaced else ""
        found.add((obj["kind"], metadata.get("namespace") or default, metadata["name"]))
    return found


# -- what the cluster holds, seen with kubectl ------------------------------------------------


@dataclass
class Cluster:
    """kubectl's view of the objects an app applied, by its ApplySet label."""

    kubectl: Kubectl

    def kinds(self) -> str:
        """Every listable resource type, comma-separated (read each time: the corpus brings
        CRDs of its own)."""
        # check=False: an aggregated API that is down (kube-prometheus registers one whose pods
        # never run here) makes api-resources exit 1 after listing everything else
        listed = self.kubectl("api-resources", "--verbs=list", "-o", "name", check=False).stdout
        return ",".join(sorted(set(listed.split())))

    def namespaced_kinds(self) -> set[str]:
        """Kinds served per namespace (read late: the corpus brings CRDs of its own)."""
        listed = self.kubectl("api-resources", "--no-headers", check=False).stdout
        return {line.split()[-1] for line in listed.splitlines() if line.split()[-2] == "true"}

    def applied(self, applyset: str) -> list[dict[str, Any]]:
        """Objects labelled as members of ``applyset`` that Tether wrote (controllers copy a
        Service's labels onto its Endpoints and EndpointSlices; those are not the app's)."""
        for _ in range(10):  # a CRD deleted between discovery and the get: discover again
            result = self.kubectl(
                "get", self.kinds(), "-A", "-l", f"{PART_OF_LABEL}={applyset}", "-o", "json",
                "--show-managed-fields", check=False,
            )  # fmt: skip
            if result.stdout.strip() or "have a resource type" not in result.stderr:
                break
            time.sleep(0.5)
        if not result.stdout.strip():
            raise AssertionError(f"kubectl get failed: {result.stderr[-2000:]}")
        return [
            item
            for item in json.loads(result.stdout)["items"]
            if any(m.get("manager") == "tether" for m in item["metadata"].get("managedFields", []))
        ]

    def inventory(self, applyset: str) -> list[dict[str, Any]]:
        result = self.kubectl(
            "get", "configmaps", "-n", INVENTORY_NAMESPACE, "-l", f"{ID_LABEL}={applyset}", "-o",
            "json",
        )  # fmt: skip
        return list(json.loads(result.stdout)["items"])

    def delete_leftovers(self, applyset: str) -> None:
        selector = f"{PART_OF_LABEL}={applyset}"
        self.kubectl("delete", self.kinds(), "-A", "-l", selector, "--wait=false", check=False)
        self.kubectl(
            "delete", "configmaps", "-n", INVENTORY_NAMESPACE, "-l", f"{ID_LABEL}={applyset}",
            check=False,
        )  # fmt: skip


def keys(items: list[dict[str, Any]]) -> set[Key]:
    return {
        (item["kind"], item["metadata"].get("namespace", ""), item["metadata"]["name"])
        for item in items
    }


def _get(kubectl: Kubectl, target: str, namespace: str) -> dict[str, Any] | None:
    """``kubectl get TYPE/NAME -n NAMESPACE`` as a dict, None when it does not exist."""
    result = kubectl("get", target, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    return dict(json.loads(result.stdout))


def dig(obj: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        value = (value or {}).get(key)
    return value


# -- fixtures: one namespace, one repository, one GitSource, one agent ------------------------


@dataclass
class Setup:
    namespace: str
    repo: GitRepo
    commit: str
    agent: AgentProcess
    cluster: Cluster
    kubeconfig: Path
    db: Path
    project: str  # the App's ``project:`` line (the corpus deploys cluster-wide)

    def tether(self, *args: str) -> tuple[int, str]:
        """The CLI, in-process, against the test cluster."""
        result = CliRunner().invoke(
            tether_cli,
            [*args, f"--kubeconfig={self.kubeconfig}"],
            env={"TETHER_DB": str(self.db), "COLUMNS": "200"},
        )
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout + result.stderr

    def app_yaml(self, case: Case) -> str:
        destination = (
            f"\n  destination: {{namespace: {case.destination}}}" if case.destination else ""
        )
        return f"""apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: {case.name}, namespace: {self.namespace}}}
spec:
  sourceRef: {{name: corpus}}
  path: {case.path}{destination}
  syncPolicy: {{prune: true, selfHeal: true, interval: 1h, retry: {{limit: 3}}}}
  healthTimeout: 120s
{self.project}"""

    def destination(self, case: Case) -> str:
        return case.destination or self.namespace


@pytest.fixture(scope="module")
def setup(
    dev_cluster: DevCluster,
    tether_crds: None,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("corpus")
    namespace = f"corpus-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", namespace)
    repo = GitRepo(tmp / "repo")
    shutil.copytree(CORPUS, repo.root, dirs_exist_ok=True)
    commit = repo.commit("real-world manifests")
    apply_yaml(
        kubectl,
        f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: corpus, namespace: {namespace}}}
spec: {{url: {json.dumps(str(repo.root))}, interval: 1h}}
""",
    )
    agent = AgentProcess(dev_cluster.kubeconfig_path, namespace, tmp, "corpus-agent")
    try:
        yield Setup(
            namespace,
            repo,
            commit,
            agent,
            Cluster(kubectl),
            dev_cluster.kubeconfig_path,
            tmp / "audit.db",
            platform_project(kubectl, namespace),
        )
    finally:
        agent.stop()


@dataclass
class Deployed:
    """One case's App, created in the shared namespace; ``applyset`` is learnt after it syncs."""

    case: Case
    setup: Setup
    objects: list[dict[str, Any]]  # as the corpus holds them
    applyset: str = ""
    identity: str = ""  # the app's name as Tether records it (label tether.dev/app)


@pytest.fixture(scope="module", params=CASES, ids=str)
def deployed(request: pytest.FixtureRequest, setup: Setup, kubectl: Kubectl) -> Iterator[Deployed]:
    case: Case = request.param
    objects = corpus_objects(setup.repo.root, case)
    apply_yaml(kubectl, setup.app_yaml(case))
    state = Deployed(case, setup, objects)
    yield state
    _clean_up(kubectl, setup, case, state.applyset)


def _clean_up(kubectl: Kubectl, setup: Setup, case: Case, applyset: str) -> None:
    """Leave the shared cluster as it was whatever happened: the App (finalizers dropped if it
    is stuck deleting) and anything it applied."""
    kubectl(
        "patch", "apps.tether.dev", case.name, "-n", setup.namespace, "--type=merge",
        "-p", '{"metadata":{"finalizers":null}}', check=False,
    )  # fmt: skip
    kubectl(
        "delete", "apps.tether.dev", case.name, "-n", setup.namespace, "--ignore-not-found",
        "--wait=false", check=False,
    )  # fmt: skip
    if applyset:
        setup.cluster.delete_leftovers(applyset)


# -- the checks ---------------------------------------------------------------------------------


def _app(kubectl: Kubectl, setup: Setup, name: str) -> dict[str, Any]:
    return kubectl.get("apps.tether.dev", name, setup.namespace) or {"status": {}}


def _ready_at(kubectl: Kubectl, setup: Setup, name: str) -> dict[str, Any] | None:
    """The App once it is Ready at the corpus commit; raises once it has stalled (its retries
    are spent, so waiting longer cannot help)."""
    app = kubectl.get("apps.tether.dev", name, setup.namespace) or {}
    status = app.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") == "True" and status.get("lastAppliedRevision") == setup.commit:
        return app
    if (conditions.get("Stalled") or {}).get("status") == "True":
        raise AssertionError(f"App {name} stalled: {ready.get('reason')}: {ready.get('message')}")
    return None


def _wait_ready(kubectl: Kubectl, setup: Setup, name: str) -> dict[str, Any]:
    try:
        app: dict[str, Any] = wait_for(
            lambda: _ready_at(kubectl, setup, name), SYNC_TIMEOUT, f"App {name} Ready"
        )
    except AssertionError as error:
        if "stalled" in str(error):
            raise
        ready = app_condition(kubectl, setup.namespace, name, "Ready")
        raise AssertionError(f"{error}; Ready condition: {json.dumps(ready)}") from None
    return app


def _learn_identity(state: Deployed, kubectl: Kubectl) -> None:
    """The app's ApplySet id and recorded name, read from the object the hand edit targets."""
    edit = state.case.edit
    target = _get(kubectl, edit.target, edit.namespace or state.setup.destination(state.case))
    labels = dig(target, ("metadata", "labels")) or {}
    state.applyset, state.identity = labels.get(PART_OF_LABEL, ""), labels.get(APP_LABEL, "")
    assert state.applyset and state.identity, f"{edit.target} carries no inventory labels"


def test_the_app_syncs_every_object(deployed: Deployed, kubectl: Kubectl) -> None:
    setup, case = deployed.setup, deployed.case
    app = _wait_ready(kubectl, setup, case.name)
    _learn_identity(deployed, kubectl)

    expected = expected_keys(
        deployed.objects, setup.cluster.namespaced_kinds(), setup.destination(case)
    )
    assert len(expected) == len(deployed.objects), "the corpus holds one object twice"
    assert app["status"]["inventory"]["count"] == len(expected)
    seen = keys(setup.cluster.applied(deployed.applyset))
    assert seen == expected, (
        f"missing: {sorted(expected - seen)}; unexpected: {sorted(seen - expected)}"
    )

    def settled() -> dict[str, HealthStatus] | None:
        live = setup.cluster.applied(deployed.applyset)
        report = assess_all([(ObjectRef.of(i), i) for i in live])
        health = {str(o.ref): o.status for o in report.objects}
        waiting = {ref for ref, status in health.items() if status is not HealthStatus.HEALTHY}
        excused = {ref for ref in waiting if any(p in ref for p in case.unhealthy_here)}
        return health if waiting == excused else None

    try:
        health = wait_for(settled, SYNC_TIMEOUT, f"{case.name}'s objects to be healthy")
    except AssertionError:
        live = setup.cluster.applied(deployed.applyset)
        report = assess_all([(ObjectRef.of(i), i) for i in live])
        raise AssertionError(
            f"{case.name}: not healthy: {[(str(o.ref), o.message) for o in report.not_healthy()]}"
        ) from None
    excused = {ref: status for ref, status in health.items() if status is not HealthStatus.HEALTHY}
    assert set(excused.values()) <= {HealthStatus.PROGRESSING, HealthStatus.DEGRADED}, excused
    if not case.unhealthy_here:  # the agent's own verdict, after its health wait
        wait_for(
            lambda: _app(kubectl, setup, case.name)["status"].get("health") == "Healthy",
            SYNC_TIMEOUT,
            f"App {case.name} status.health Healthy",
        )


def test_no_drift_after_the_sync(deployed: Deployed, kubectl: Kubectl) -> None:
    setup, case = deployed.setup, deployed.case
    assert deployed.identity, "the sync step did not finish"
    code, out = setup.tether(
        "diff", "--source", str(setup.repo.root), "--path", case.path,
        "--app", f"{setup.namespace}/{case.name}", "-n", setup.destination(case), "--prune",
    )  # fmt: skip
    assert code == 0, out
    drifted = app_condition(kubectl, setup.namespace, case.name, "Drifted")
    assert drifted is not None and drifted["status"] == "False", drifted
    # nobody touched the objects yet, so the agent must not have reported drift either
    assert _drift_events(kubectl, setup, case.name) == []


def _drift_events(kubectl: Kubectl, setup: Setup, name: str) -> list[str]:
    events = kubectl(
        "get", "events", "-n", setup.namespace, "-o", "json",
        "--field-selector", f"involvedObject.kind=App,involvedObject.name={name},reason=DriftDetected",
    )  # fmt: skip
    return [e["message"] for e in json.loads(events.stdout)["items"]]


def test_a_hand_edit_is_healed(deployed: Deployed, kubectl: Kubectl) -> None:
    setup, edit = deployed.setup, deployed.case.edit
    namespace = edit.namespace or setup.destination(deployed.case)
    original = dig(_get(kubectl, edit.target, namespace), edit.field)
    assert original is not None and original != edit.value
    patched = kubectl(
        "patch", edit.target, "-n", namespace, "--type=merge", "-p", edit.patch(), "-o", "json"
    )
    assert dig(json.loads(patched.stdout), edit.field) == edit.value
    wait_for(
        lambda: dig(_get(kubectl, edit.target, namespace), edit.field) == original,
        HEAL_TIMEOUT,
        f"{edit.target} {'.'.join(edit.field)} back to {original!r}",
    )
    assert _ready_at(kubectl, setup, deployed.case.name), "the App stays Ready"


def test_deleting_the_app_deletes_what_it_applied(deployed: Deployed, kubectl: Kubectl) -> None:
    """Contract of the App finalizer (``spec.prune: true``, no ``tether.dev/deletion-policy:
    orphan``): the agent deletes the App's objects and its inventory, then releases the App."""
    setup, case = deployed.setup, deployed.case
    assert deployed.applyset, "the sync step did not finish"
    assert setup.cluster.applied(deployed.applyset), "nothing to delete: the sync step failed"
    kubectl("delete", "apps.tether.dev", case.name, "-n", setup.namespace, "--wait=false")
    wait_for(
        lambda: kubectl.get("apps.tether.dev", case.name, setup.namespace) is None,
        DELETE_TIMEOUT,
        f"App {case.name} to be released by its finalizer",
    )
    left = [
        i
        for i in setup.cluster.applied(deployed.applyset)
        if not i["metadata"].get("deletionTimestamp")
    ]
    assert not left, (
        f"the App is gone but {len(left)} of its objects were not deleted, e.g. "
        f"{sorted(keys(left))[:10]}"
    )
    wait_for(
        lambda: not setup.cluster.applied(deployed.applyset),
        DELETE_TIMEOUT,
        "the deleted objects to disappear",
    )
    assert not setup.cluster.inventory(deployed.applyset), "the inventory ConfigMap remains"


# -- CLI first, then the agent -----------------------------------------------------------------


@pytest.fixture
def storage(kubectl: Kubectl) -> Iterator[None]:
    """What a real cluster's provisioner would give podinfo's database PersistentVolumeClaim."""
    apply_yaml(
        kubectl,
        """apiVersion: v1
kind: PersistentVolume
metadata: {name: corpus-database-primary}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: /tmp/corpus-database-primary}
  claimRef: {namespace: production, name: database-primary}
""",
    )
    yield
    kubectl("delete", "pv", "corpus-database-primary", "--wait=false", check=False)


def _identities(items: list[dict[str, Any]]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Per kind and name: each object's uid (a recreated object has a new one) and the app it
    says it belongs to."""
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for item in items:
        metadata = item["metadata"]
        found.setdefault((item["kind"], metadata["name"]), set()).add(
            (metadata["uid"], metadata["labels"].get(APP_LABEL, ""))
        )
    return found


def test_a_cli_synced_app_is_handed_to_the_agent(
    setup: Setup, kubectl: Kubectl, storage: None
) -> None:
    """``tether sync --app X`` then an agent App X: same identity, nothing deleted or recreated."""
    case = HANDOVER
    objects = corpus_objects(setup.repo.root, case)
    code, out = setup.tether(
        "sync", "--source", str(setup.repo.root), "--path", case.path, "--app", case.name,
        "-n", setup.namespace, "--prune", "--timeout", "0",
    )  # fmt: skip
    assert code == 0, out
    target = _get(kubectl, case.edit.target, case.edit.namespace)
    applyset = dig(target, ("metadata", "labels", PART_OF_LABEL))
    try:
        before = setup.cluster.applied(applyset)
        assert keys(before) == expected_keys(
            objects, setup.cluster.namespaced_kinds(), setup.namespace
        )
        identity = _identities(before)

        apply_yaml(kubectl, setup.app_yaml(case))
        _wait_ready(kubectl, setup, case.name)

        after = _identities(setup.cluster.applied(applyset))
        assert after == identity, "objects were recreated or changed hands"
        assert len(setup.cluster.inventory(applyset)) == 1
        code, out = setup.tether(
            "diff", "--source", str(setup.repo.root), "--path", case.path, "--app", case.name,
            "-n", setup.namespace, "--prune",
        )  # fmt: skip
        assert code == 0, out
    finally:
        _clean_up(kubectl, setup, case, applyset)
