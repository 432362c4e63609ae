"""Reading how to reach a cluster: kubeconfig files (kubectl's rules) or the in-cluster service
account.

Which files: ``--kubeconfig`` alone when given (it must exist); otherwise every file listed in
``KUBECONFIG`` (``:``-separated; missing ones are skipped, as kubectl does), merged; otherwise
``~/.kube/config``. Merging follows kubectl: the first file that defines a cluster, user or
context name wins, the first ``current-context`` set wins, and relative paths
(``certificate-authority``, ``client-certificate``, ``client-key``, ``tokenFile``, an exec
``command`` containing a ``/``) resolve against the file they were written in.

Supported user credentials: client certificates (file or inline data), bearer tokens (inline or
``tokenFile``, re-read on every request so rotated tokens are picked up without a restart), basic
auth, and ``exec`` credential plugins (see ``tether.cluster.auth``). Inline certificate data is
written to a private temporary directory because Python's TLS stack only loads certificates from
files. Servers may be IPv6 literals (``https://[::1]:6443``).
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tether.cluster.auth import (
    EXEC_API_VERSIONS,
    INTERACTIVE_MODES,
    Credentials,
    ExecPlugin,
    ExecSpec,
)
from tether.errors import ClusterError

IN_CLUSTER_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"
_SECTIONS = ("clusters", "users", "contexts")


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
        """The TLS settings; ClusterError naming the file when a certificate or key cannot be
        loaded (missing, unreadable, not PEM, or a key that does not match)."""
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise ClusterError(
                f"kubeconfig context {self.context!r}: the certificate authority {self.ca_file} "
                f"cannot be loaded ({_tls_reason(error)}); fix certificate-authority(-data)"
            ) from None
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        creds = self.credentials
        try:
            if creds.client_cert and creds.client_key:
                context.load_cert_chain(str(creds.client_cert), str(creds.client_key))
            if creds.exec_plugin is not None:
                creds.exec_plugin.use_client_certificate_in(context)
        except (OSError, ssl.SSLError) as error:
            raise ClusterError(
                f"kubeconfig context {self.context!r}: the client certificate "
                f"{creds.client_cert or '(from the exec plugin)'} and key "
                f"{creds.client_key or ''} cannot be loaded ({_tls_reason(error)}); fix "
                "client-certificate(-data) and client-key(-data)"
            ) from None
        return context


def _tls_reason(error: OSError) -> str:
    """What went wrong loading a PEM file, without the file's content."""
    if isinstance(error, ssl.SSLError):
        return error.reason or "not a valid PEM certificate or key"
    return error.strerror or type(error).__name__


def kubeconfig_files(kubeconfig: str | Path | None = None) -> list[Path]:
    """The files kubectl would read, in precedence order (existing or not)."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    listed = [entry for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep) if entry]
    if not listed:
        return [Path.home() / ".kube" / "config"]
    return list(dict.fromkeys(Path(entry).expanduser() for entry in listed))


def load(kubeconfig: str | Path | None = None, context: str | None = None) -> Connection:
    """The connection for ``context`` (or the current one) of ``kubeconfig``, or of the merged
    ``KUBECONFIG`` files, or of ``~/.kube/config``.

    With no kubeconfig given and none at the default places, the in-cluster service account is
    used (what the agent does when it runs in a Pod).
    """
    candidates = kubeconfig_files(kubeconfig)
    files = [path for path in candidates if path.is_file()]
    if not files:
        if kubeconfig is None and in_cluster_available():
            return in_cluster()
        raise ClusterError(
            f"kubeconfig {_describe(candidates)} not found: pass --kubeconfig, set KUBECONFIG, "
            "or start a local cluster with `tether dev-cluster up`"
        )
    return _connection(_merge(files), context)


def _describe(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else ":".join(str(path) for path in files)


# -- reading and merging ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One named cluster, user or context, and the file it came from."""

    name: str
    body: dict[str, Any]
    origin: Path

    def path(self, key: str) -> Path | None:
        """``key``'s value as a path, relative to the file the entry was written in."""
        value = self.body.get(key)
        if not value:
            return None
        candidate = Path(str(value)).expanduser()
        return candidate if candidate.is_absolute() else self.origin.parent / candidate


@dataclass
class _Merged:
    files: list[Path]
    entries: dict[str, dict[str, _Entry]] = field(
        default_factory=lambda: {section: {} for section in _SECTIONS}
    )
    current_context: str = ""

    def find(self, section: str, name: str) -> _Entry:
        entry = self.entries[section].get(name)
        if entry is None:
            raise ClusterError(
                f"kubeconfig {_describe(self.files)}: no {section[:-1]} named {name!r}"
            )
        return entry


def _read(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ClusterError(f"kubeconfig {path} is not valid YAML: {error}") from error
    except OSError as error:
        raise ClusterError(f"kubeconfig {path} cannot be read ({error.strerror})") from error
    if not isinstance(config, dict):
        raise ClusterError(f"kubeconfig {path}: expected a mapping (kind: Config) at the top")
    return config


def _named_entries(config: dict[str, Any], section: str, path: Path) -> list[_Entry]:
    items = config.get(section) or []
    if not isinstance(items, list):
        raise ClusterError(f"kubeconfig {path}: {section} must be a list")
    entries = []
    for item in items:
        body = item.get(section[:-1]) if isinstance(item, dict) else None
        if not isinstance(item, dict) or not item.get("name") or not isinstance(body, dict):
            raise ClusterError(
                f"kubeconfig {path}: every entry of {section} needs a name and a "
                f"{section[:-1]} mapping"
            )
        entries.append(_Entry(str(item["name"]), body, path))
    return entries


def _merge(files: list[Path]) -> _Merged:
    """kubectl's merge: the first file to define a name, or a current-context, wins."""
    merged = _Merged(files)
    for path in files:
        config = _read(path)
        for section in _SECTIONS:
            for entry in _named_entries(config, section, path):
                merged.entries[section].setdefault(entry.name, entry)
        if not merged.current_context and config.get("current-context"):
            merged.current_context = str(config["current-context"])
    return merged


# -- one context ------------------------------------------------------------------------------


def _connection(merged: _Merged, context: str | None) -> Connection:
    context_name = context or merged.current_context
    if not context_name:
        raise ClusterError(
            f"kubeconfig {_describe(merged.files)} has no current-context: pass --context"
        )
    ctx = merged.find("contexts", context_name)
    cluster = merged.find("clusters", str(ctx.body.get("cluster", "")))
    user = merged.find("users", str(ctx.body["user"])) if ctx.body.get("user") else None
    server = str(cluster.body.get("server") or "").rstrip("/")
    if not server:
        raise ClusterError(f"kubeconfig {cluster.origin}: cluster {cluster.name!r} has no server")
    ca_file = _file_or_data(cluster, "certificate-authority")
    insecure = bool(cluster.body.get("insecure-skip-tls-verify", False))
    return Connection(
        server=server,
        context=context_name,
        namespace=ctx.body.get("namespace") or "default",
        ca_file=ca_file,
        insecure=insecure,
        credentials=_credentials(user, cluster, server, ca_file) if user else Credentials(),
    )


def _credentials(user: _Entry, cluster: _Entry, server: str, ca_file: Path | None) -> Credentials:
    body = user.body
    exec_section = body.get("exec")
    return Credentials(
        client_cert=_file_or_data(user, "client-certificate"),
        client_key=_file_or_data(user, "client-key"),
        token=body.get("token"),
        token_file=user.path("tokenFile"),
        basic=(body["username"], body.get("password", "")) if body.get("username") else None,
        exec_plugin=ExecPlugin(_exec_spec(user, cluster, server, ca_file))
        if exec_section
        else None,
    )


def _exec_spec(user: _Entry, cluster: _Entry, server: str, ca_file: Path | None) -> ExecSpec:
    section = user.body["exec"]
    where = f"kubeconfig {user.origin}: user {user.name!r} exec"
    if not isinstance(section, dict) or not section.get("command"):
        raise ClusterError(f"{where} needs a command")
    api_version = section.get("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise ClusterError(
            f"{where}: apiVersion {api_version!r} is not supported; use one of "
            f"{', '.join(EXEC_API_VERSIONS)}"
        )
    mode = section.get("interactiveMode") or "IfAvailable"
    if mode not in INTERACTIVE_MODES:
        raise ClusterError(
            f"{where}: interactiveMode {mode!r} is not one of {', '.join(INTERACTIVE_MODES)}"
        )
    env = section.get("env") or []
    if not all(isinstance(e, dict) and "name" in e and "value" in e for e in env):
        raise ClusterError(f"{where}: every env entry needs a name and a value")
    command = str(section["command"])
    if "/" in command and not Path(command).is_absolute():
        command = str(user.origin.parent / command)
    return ExecSpec(
        user=user.name,
        kubeconfig=user.origin,
        command=command,
        api_version=str(api_version),
        args=tuple(str(arg) for arg in section.get("args") or []),
        env=tuple((str(e["name"]), str(e["value"])) for e in env),
        install_hint=str(section.get("installHint") or ""),
        interactive_mode=str(mode),
        cluster=_exec_cluster_info(cluster, server, ca_file)
        if section.get("provideClusterInfo")
        else None,
    )


def _exec_cluster_info(cluster: _Entry, server: str, ca_file: Path | None) -> dict[str, Any]:
    """``spec.cluster`` of the ExecCredential handed to a plugin with ``provideClusterInfo``."""
    body = cluster.body
    info: dict[str, Any] = {"server": server}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url"):
        if body.get(key):
            info[key] = body[key]
    if ca_file is not None and ca_file.is_file():
        info["certificate-authority-data"] = base64.b64encode(ca_file.read_bytes()).decode()
    for extension in body.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == _EXEC_CLUSTER_EXTENSION:
            info["config"] = extension.get("extension")
    return info


_inline_dir: Path | None = None


def _private_dir() -> Path:
    global _inline_dir  # noqa: PLW0603 - one private temp dir per process, removed at exit
    if _inline_dir is None:
        _inline_dir = Path(tempfile.mkdtemp(prefix="tether-kubeconfig-"))
        atexit.register(shutil.rmtree, _inline_dir, True)
    return _inline_dir


def _file_or_data(entry: _Entry, key: str) -> Path | None:
    data = entry.body.get(f"{key}-data")
    if data:
        target = _private_dir() / f"{key}-{len(list(_private_dir().iterdir()))}.pem"
        target.touch(mode=0o600)
        target.write_bytes(base64.b64decode(data))
        return target
    return entry.path(key)


# -- in a Pod ---------------------------------------------------------------------------------


def in_cluster_available(
    service_account_dir: Path = IN_CLUSTER_DIR, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether this process runs in a Pod with a mounted service account token."""
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (service_account_dir / "token").is_file()


def in_cluster(
    service_account_dir: Path = IN_CLUSTER_DIR, environ: Mapping[str, str] | None = None
) -> Connection:
    """The Pod's own service account, from ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the files in
    ``service_account_dir`` (``token``, re-read on every request since the kubelet rotates it;
    ``ca.crt``; ``namespace``)."""
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    port = env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ClusterError(
            "not running in a Pod (KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT unset): "
            "pass --kubeconfig"
        )
    token = service_account_dir / "token"
    if not token.is_file():
        raise ClusterError(
            f"in-cluster: no service account token at {token}; mount one "
            "(automountServiceAccountToken) or pass --kubeconfig"
        )
    ca_file = service_account_dir / "ca.crt"
    namespace_file = service_account_dir / "namespace"
    return Connection(
        server=f"https://{url_host(host)}:{port}",
        context="in-cluster",
        namespace=namespace_file.read_text().strip() if namespace_file.is_file() else "default",
        ca_file=ca_file if ca_file.is_file() else None,
        credentials=Credentials(token_file=token),
    )


def url_host(host: str) -> str:
    """``host`` as it goes in a URL: IPv6 literals in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
