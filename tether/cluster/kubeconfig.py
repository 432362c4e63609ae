"""Reading how to reach a cluster: kubeconfig files (kubectl's rules) or the in-cluster service
account.

Supported user credentials: client certificates (file or inline data), bearer tokens (inline or
``tokenFile``, re-read on every request so rotated tokens are picked up without a restart), basic
auth, and ``exec`` credential plugins. Inline certificate data is written to a private temporary
directory because Python's TLS stack only loads certificates from files.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tether.errors import ClusterError

IN_CLUSTER_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: at most one of token, token_file, basic, exec_spec; plus a client cert."""

    client_cert: Path | None = None
    client_key: Path | None = None
    token: str | None = None
    token_file: Path | None = None
    basic: tuple[str, str] | None = None
    exec_spec: dict[str, Any] | None = None

    def bearer_token(self) -> str | None:
        """The current bearer token, re-read from ``token_file`` or the exec plugin each time."""
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        if self.exec_spec is not None:
            return _run_exec_plugin(self.exec_spec)
        return self.token


@dataclass(frozen=True)
class Connection:
    """Everything needed to open an HTTPS connection to one API server."""

    server: str
    context: str
    namespace: str = "default"
    ca_file: Path | None = None
    insecure: bool = False
    credentials: Credentials = field(default_factory=Credentials)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        creds = self.credentials
        if creds.client_cert and creds.client_key:
            context.load_cert_chain(str(creds.client_cert), str(creds.client_key))
        return context


def default_kubeconfig_path() -> Path:
    env = os.environ.get("KUBECONFIG")
    if env:
        for candidate in env.split(os.pathsep):
            if candidate and Path(candidate).expanduser().is_file():
                return Path(candidate).expanduser()
    return Path.home() / ".kube" / "config"


def load(kubeconfig: str | Path | None = None, context: str | None = None) -> Connection:
    """The connection for ``context`` (or the current one) of ``kubeconfig``.

    With no kubeconfig given and none at the default places, the in-cluster service account is
    used (what the agent does when it runs in a Pod).
    """
    path = Path(kubeconfig).expanduser() if kubeconfig else default_kubeconfig_path()
    if not path.is_file():
        if kubeconfig is None and (IN_CLUSTER_DIR / "token").is_file():
            return in_cluster()
        raise ClusterError(
            f"kubeconfig {path} not found: pass --kubeconfig, set KUBECONFIG, or start a local "
            "cluster with `tether dev-cluster up`"
        )
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ClusterError(f"kubeconfig {path} is not valid YAML: {error}") from error
    return _from_config(config, path, context)


def _named(config: dict[str, Any], section: str, name: str, path: Path) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry.get(section[:-1]) or {})
    raise ClusterError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")


def _from_config(config: dict[str, Any], path: Path, context: str | None) -> Connection:
    context_name = context or config.get("current-context")
    if not context_name:
        raise ClusterError(f"kubeconfig {path} has no current-context: pass --context")
    ctx = _named(config, "contexts", context_name, path)
    cluster = _named(config, "clusters", ctx.get("cluster", ""), path)
    user = _named(config, "users", ctx["user"], path) if ctx.get("user") else {}
    base = path.parent
    return Connection(
        server=str(cluster.get("server", "")).rstrip("/"),
        context=context_name,
        namespace=ctx.get("namespace") or "default",
        ca_file=_file_or_data(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        credentials=Credentials(
            client_cert=_file_or_data(user, "client-certificate", base),
            client_key=_file_or_data(user, "client-key", base),
            token=user.get("token"),
            token_file=_resolve(user["tokenFile"], base) if user.get("tokenFile") else None,
            basic=(user["username"], user.get("password", "")) if user.get("username") else None,
            exec_spec=user.get("exec"),
        ),
    )


def _resolve(value: str, base: Path) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


_inline_dir: Path | None = None


def _private_dir() -> Path:
    global _inline_dir  # noqa: PLW0603 - one private temp dir per process, removed at exit
    if _inline_dir is None:
        _inline_dir = Path(tempfile.mkdtemp(prefix="tether-kubeconfig-"))
        atexit.register(shutil.rmtree, _inline_dir, True)
    return _inline_dir


def _file_or_data(section: dict[str, Any], key: str, base: Path) -> Path | None:
    if section.get(f"{key}-data"):
        target = _private_dir() / f"{key}-{len(list(_private_dir().iterdir()))}.pem"
        target.write_bytes(base64.b64decode(section[f"{key}-data"]))
        target.chmod(0o600)
        return target
    if section.get(key):
        return _resolve(str(section[key]), base)
    return None


def in_cluster() -> Connection:
    """The Pod's own service account: token re-read on every request (it rotates)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ClusterError(
            "not running in a Pod (KUBERNETES_SERVICE_HOST unset): pass --kubeconfig"
        )
    namespace_file = IN_CLUSTER_DIR / "namespace"
    return Connection(
        server=f"https://{host}:{port}",
        context="in-cluster",
        namespace=namespace_file.read_text().strip() if namespace_file.is_file() else "default",
        ca_file=IN_CLUSTER_DIR / "ca.crt",
        credentials=Credentials(token_file=IN_CLUSTER_DIR / "token"),
    )


def _run_exec_plugin(spec: dict[str, Any]) -> str:
    command = [spec["command"], *(spec.get("args") or [])]
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {
            "apiVersion": spec.get("apiVersion"),
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
    )
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=60
    )
    if result.returncode != 0:
        raise ClusterError(
            f"kubeconfig exec plugin {spec['command']!r} failed with exit code {result.returncode}; "
            "run it by hand to see why"
        )
    token = json.loads(result.stdout).get("status", {}).get("token")
    if not token:
        raise ClusterError(f"kubeconfig exec plugin {spec['command']!r} returned no token")
    return str(token)
