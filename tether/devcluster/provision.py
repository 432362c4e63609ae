"""Finding, and when missing building, the binaries of the local control plane.

Lookup order for each binary (the envtest convention first): ``$KUBEBUILDER_ASSETS``, then
``PATH``, then Tether's cache (``$TETHER_CACHE_DIR`` or ``~/.cache/tether``). When a binary is in
none of them, its component is built from its Go module through the Go module proxy at the
version pinned in ``versions.py`` and stored in the cache, so this happens once per machine.

Kubernetes cannot be ``go install``-ed: its go.mod points every staging module (k8s.io/api, …)
at ``./staging`` with ``replace`` directives, which Go refuses for a dependency. We therefore write a
small wrapper module whose own go.mod replaces each staging module with its published ``v0.X.Y``
twin, and build the ``cmd/`` packages from there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from tether.core.paths import cache_root
from tether.devcluster import versions
from tether.devcluster.versions import Component
from tether.errors import DevClusterError


def component_cache_dir(component: Component) -> Path:
    return cache_root() / "bin" / component.cache_dir_name


def _component_of(binary: str) -> Component:
    for component in versions.ALL_COMPONENTS:
        if binary in component.binaries:
            return component
    raise DevClusterError(f"unknown control-plane binary {binary!r}")


def find_binary(binary: str) -> Path | None:
    """The first ``binary`` found in $KUBEBUILDER_ASSETS, the cache (the pinned version) or
    PATH; None if absent. The pinned build comes before PATH so that a different kubectl
    installed on the machine never changes what the tests compare against."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / binary).is_file():
        return Path(assets) / binary
    cached = component_cache_dir(_component_of(binary)) / binary
    if cached.is_file():
        return cached
    on_path = shutil.which(binary)
    return Path(on_path) if on_path else None


def ensure_binary(binary: str, log: TextLog | None = None) -> Path:
    """The path of ``binary``, building its component into the cache first if it is missing."""
    found = find_binary(binary)
    if found is not None:
        return found
    component = _component_of(binary)
    ensure_component(component, log)
    return component_cache_dir(component) / binary


class TextLog:
    """Where build progress goes: a stream for people, quiet for machine output."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr

    def say(self, message: str) -> None:
        print(message, file=self._stream, flush=True)


def ensure_component(component: Component, log: TextLog | None = None) -> Path:
    """Build ``component`` into the cache unless every one of its binaries is already there."""
    log = log or TextLog()
    target = component_cache_dir(component)
    with _build_lock():
        if all((target / name).is_file() for name in component.binaries):
            return target
        _require_go()
        log.say(
            f"building {component.name} {component.version} from Go modules (once per machine)…"
        )
        work = cache_root() / "build" / component.cache_dir_name
        work.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{component.cache_dir_name}-", dir=target.parent))
        try:
            _BUILDERS[component.name](component, work, staging)
            missing = [name for name in component.binaries if not (staging / name).is_file()]
            if missing:
                raise DevClusterError(f"building {component.name} produced no {', '.join(missing)}")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.say(f"built {component.name} {component.version} into {target}")
        return target


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    lock_path = cache_root() / "bin" / ".build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _require_go() -> None:
    if shutil.which("go") is None:
        raise DevClusterError(
            "the control-plane binaries are missing and Go is not installed to build them: "
            "install Go 1.24+ or point $KUBEBUILDER_ASSETS at a directory with etcd, "
            "kube-apiserver, kube-controller-manager, kube-scheduler and kubectl"
        )


def _go(
    args: list[str], cwd: Path, extra_env: dict[str, str] | None = None, *, niceness: int = 0
) -> str:
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", **(extra_env or {})}
    command = ["go", *args] if niceness == 0 else ["nice", "-n", str(niceness), "go", *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-30:])
        raise DevClusterError(f"`go {' '.join(args)}` failed in {cwd}:\n{tail}")
    return result.stdout


def _write_wrapper_module(work: Path, go_mod: str) -> None:
    (work / "go.mod").write_text(go_mod)
    (work / "go.sum").touch()


def _build_kubernetes(component: Component, work: Path, out: Path) -> None:
    version = component.version
    staging_version = "v0." + version.split(".", 1)[1]
    _write_wrapper_module(work, "module tether.local/k8sbuild\n\ngo 1.24\n")
    info = json.loads(_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], work))
    upstream_go_mod = Path(info["GoMod"]).read_text()
    staging_modules = sorted(
        set(re.findall(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s*$", upstream_go_mod, re.M))
    )
    if not staging_modules:
        raise DevClusterError(f"found no staging modules in k8s.io/kubernetes@{version}'s go.mod")
    replaces = "\n".join(f"\t{m} => {m} {staging_version}" for m in staging_modules)
    _write_wrapper_module(
        work,
        "module tether.local/k8sbuild\n\ngo 1.24\n\n"
        f"require k8s.io/kubernetes {version}\n\nreplace (\n{replaces}\n)\n",
    )
    _go(["mod", "download", "k8s.io/kubernetes"], work)
    packages = [f"k8s.io/kubernetes/cmd/{name}" for name in component.binaries]
    major, minor = version.lstrip("v").split(".")[:2]
    stamp = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    ldflags = ["-s", "-w"] + [
        f"-X {pkg}.{key}={value}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in stamp.items()
    ]
    _go(["get", *(f"{package}@{version}" for package in packages)], work)
    _go(
        [
            "build",
            "-trimpath",
            "-tags",
            "selinux,notest",
            "-ldflags",
            " ".join(ldflags),
            "-o",
            str(out) + "/",
            *packages,
        ],
        work,
    )


def _build_etcd(component: Component, work: Path, out: Path) -> None:
    _write_wrapper_module(
        work,
        f"module tether.local/etcdbuild\n\ngo 1.23\n\nrequire go.etcd.io/etcd/server/v3 {component.version}\n",
    )
    _go(["get", f"go.etcd.io/etcd/server/v3@{component.version}"], work)
    _go(
        [
            "build",
            "-trimpath",
            "-ldflags",
            "-s -w",
            "-o",
            str(out / "etcd"),
            "go.etcd.io/etcd/server/v3",
        ],
        work,
    )


def _go_install(package: str, component: Component, work: Path, out: Path) -> None:
    _go(
        ["install", "-trimpath", "-ldflags", "-s -w", f"{package}@{component.version}"],
        work,
        {"GOBIN": str(out), "GOFLAGS": ""},
    )


def _build_kwok(component: Component, work: Path, out: Path) -> None:
    _go_install("sigs.k8s.io/kwok/cmd/kwok", component, work, out)


def _build_kustomize(component: Component, work: Path, out: Path) -> None:
    _go_install("sigs.k8s.io/kustomize/kustomize/v5", component, work, out)


def _build_sops(component: Component, work: Path, out: Path) -> None:
    # sops's go.mod has no replace directives, so a plain `go install` of its cmd works.
    _go_install("github.com/getsops/sops/v3/cmd/sops", component, work, out)


GITEA_SOURCE_DIR = "source"
"""Where, inside Gitea's cache directory, its module source stays: Gitea is built without
embedded assets, so it reads its locales and templates from there (``STATIC_ROOT_PATH``)."""


def gitea_static_root() -> Path:
    """The ``STATIC_ROOT_PATH`` for the cached Gitea build (its module source copy)."""
    return component_cache_dir(versions.GITEA_COMPONENT) / GITEA_SOURCE_DIR


def _build_gitea(component: Component, work: Path, out: Path) -> None:
    # Gitea's go.mod has replace directives, so `go install` refuses it: download the module,
    # copy it somewhere writable and build inside the copy. The copy stays next to the binary
    # because it serves as STATIC_ROOT_PATH at run time. SQLite needs cgo. This is the slowest
    # build of all (about 10 minutes on 2 cores), hence `nice`.
    if shutil.which(os.environ.get("CC", "gcc")) is None:
        raise DevClusterError(
            "building Gitea needs a C compiler (cgo, for SQLite) and none was found: install gcc "
            "and libc6-dev (./scripts/setup does), or set $CC"
        )
    _write_wrapper_module(work, "module tether.local/giteabuild\n\ngo 1.24\n")
    info = json.loads(
        _go(["mod", "download", "-json", f"code.gitea.io/gitea@{component.version}"], work)
    )
    source = out / GITEA_SOURCE_DIR
    shutil.copytree(info["Dir"], source)
    for directory, _, files in os.walk(source):  # the module cache's copies are read-only
        for path in (directory, *(os.path.join(directory, name) for name in files)):
            os.chmod(path, os.stat(path).st_mode | 0o200)
    stamp = f"-s -w -X main.Version={component.version.lstrip('v')}"
    _go(
        [
            "build",
            "-trimpath",
            "-tags",
            "sqlite sqlite_unlock_notify",
            "-ldflags",
            stamp,
            "-o",
            str(out / "gitea"),
            ".",
        ],
        source,
        {"CGO_ENABLED": "1", "GOFLAGS": ""},
        niceness=10,
    )


def _build_helm(component: Component, work: Path, out: Path) -> None:
    # helm's go.mod has no replace directives, so `go install` of its cmd works. Its version is
    # stamped the way its Makefile does (otherwise `helm version` says only "v3.21"), and its
    # default Kubernetes version is that of the client-go it is built with.
    info = json.loads(
        _go(["mod", "download", "-json", f"helm.sh/helm/v3@{component.version}"], work)
    )
    client_go = re.search(
        r"^\s*k8s\.io/client-go v0\.(\d+)\.", Path(info["GoMod"]).read_text(), re.M
    )
    stamps = [f"-X helm.sh/helm/v3/internal/version.version={component.version}"]
    if client_go:
        for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
            stamps += [
                f"-X {package}.k8sVersionMajor=1",
                f"-X {package}.k8sVersionMinor={client_go.group(1)}",
            ]
    _go(
        [
            "install",
            "-trimpath",
            "-ldflags",
            " ".join(["-s", "-w", *stamps]),
            f"helm.sh/helm/v3/cmd/helm@{component.version}",
        ],
        work,
        {"GOBIN": str(out), "GOFLAGS": ""},
    )


def _build_registry(component: Component, work: Path, out: Path) -> None:
    # The CNCF distribution registry's go.mod has no replace directives: `go install` works
    # (about 5 minutes on 2 cores, mostly downloading its cloud storage drivers).
    _go(
        [
            "install",
            "-trimpath",
            "-ldflags",
            f"-s -w -X github.com/distribution/distribution/v3/version.version={component.version}",
            f"github.com/distribution/distribution/v3/cmd/registry@{component.version}",
        ],
        work,
        {"GOBIN": str(out), "GOFLAGS": ""},
        niceness=10,
    )


def _build_metrics_server(component: Component, work: Path, out: Path) -> None:
    # metrics-server's go.mod has no replace directives: `go install` of its cmd works. Its
    # version is stamped the way its Makefile does (client-go's version package), so
    # `metrics-server --version` names it.
    _go(
        [
            "install",
            "-trimpath",
            "-ldflags",
            f"-s -w -X k8s.io/client-go/pkg/version.gitVersion={component.version}",
            f"sigs.k8s.io/metrics-server/cmd/metrics-server@{component.version}",
        ],
        work,
        {"GOBIN": str(out), "GOFLAGS": ""},
        niceness=10,
    )


def _collect_gateway_api_crds(component: Component, work: Path, out: Path) -> None:
    # Nothing to compile: the standard channel's CRDs are YAML files in the module. They are
    # joined into one manifest, each file's documents kept whole and in name order.
    _write_wrapper_module(work, "module tether.local/gatewayapi\n\ngo 1.24\n")
    info = json.loads(
        _go(["mod", "download", "-json", f"sigs.k8s.io/gateway-api@{component.version}"], work)
    )
    standard = Path(info["Dir"]) / "config" / "crd" / "standard"
    files = sorted(standard.glob("*.yaml"))
    if not files:
        raise DevClusterError(f"sigs.k8s.io/gateway-api@{component.version} has no {standard}")
    documents = [path.read_text().strip().removeprefix("---").strip() for path in files]
    (out / versions.GATEWAY_API_CRDS).write_text("\n---\n".join(documents) + "\n")


def gateway_api_crds(log: TextLog | None = None) -> Path:
    """The Gateway API standard-channel CRD manifest (built into the cache when missing)."""
    return ensure_binary(versions.GATEWAY_API_CRDS, log)


_BUILDERS = {
    "kubernetes": _build_kubernetes,
    "etcd": _build_etcd,
    "kwok": _build_kwok,
    "kustomize": _build_kustomize,
    "sops": _build_sops,
    "gitea": _build_gitea,
    "helm": _build_helm,
    "registry": _build_registry,
    "gateway-api": _collect_gateway_api_crds,
    "metrics-server": _build_metrics_server,
}


def ensure_all(log: TextLog | None = None) -> None:
    """Build every component that is not cached yet (what `.ci/run` and `dev-cluster up` call)."""
    for component in versions.ALL_COMPONENTS:
        ensure_component(component, log)
