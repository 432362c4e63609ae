"""The "Why" cases of issue #12 part 2, each reproduced against the real control plane and a
real ``tether agent`` process, and refused: a ``tokenFile`` naming a file on the agent's disk, a
``file://`` URL or path into another tenant's cached mirror, remote helpers, credentials over
plain http or in the URL, and a password with special characters, which never shows in status,
conditions, Events, the audit database or the agent's log."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.agent.conftest import (
    AgentProcess,
    apply_yaml,
    provision_deployer,
    wait_for,
)
from tests.conftest import Kubectl
from tests.security.sources_servers import Listener, PrivateGitHost
from tests.source.gitrepo import Origin
from tether.agent.annotations import REQUESTED_ANNOTATION
from tether.devcluster.controlplane import DevCluster
from tether.errors import SourceError
from tether.source import FetchRules, default_cache_dir, fetch

pytestmark = pytest.mark.cluster

WRONG_PASSWORD = "wr/ng#p?ss@%41 x"
RIGHT_PASSWORD = "r1ght/p#ss?w@rd% ok"
AGENT_TOKEN = "agent-serviceaccount-token-4f9c2e"


@pytest.fixture
def start_tenant_agent(
    dev_cluster: DevCluster,
    tether_crds: None,
    namespace: str,
    tmp_path: Path,
    kubectl: Kubectl,
) -> Iterator[Callable[..., AgentProcess]]:
    """The agent as installed for tenants: local sources refused (no --allow-local-sources),
    the namespace's Apps applied as its tether-deployer."""
    started: list[AgentProcess] = []
    provision_deployer(kubectl, namespace)

    def start(*extra: str) -> AgentProcess:
        agent = AgentProcess(
            dev_cluster.kubeconfig_path,
            namespace,
            tmp_path,
            "tenant-agent",
            *extra,
            local_sources=False,
        )
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def git_source(namespace: str, name: str, url: str, extra: str = "") -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: GitSource
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{url: {json.dumps(url)}, interval: 1h, ref: {{branch: main}}{extra}}}
"""


def app(namespace: str, name: str, source: str, path: str = ".") -> str:
    return f"""apiVersion: tether.dev/v1alpha1
kind: App
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  sourceRef: {{name: {source}}}
  path: {path}
  syncPolicy: {{prune: true, interval: 1h}}
  healthTimeout: 30s
"""


def ready(kubectl: Kubectl, kind: str, namespace: str, name: str) -> dict[str, Any]:
    obj = kubectl.get(kind, name, namespace) or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def refused(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    """The GitSource's Ready=False condition, once the agent has written it."""
    return wait_for(  # type: ignore[no-any-return]
        lambda: (
            (c := ready(kubectl, "gitsources.tether.dev", namespace, name))
            and c["status"] == "False"
            and c
        ),
        60,
        f"GitSource {name} to be refused",
    )


def secret(kubectl: Kubectl, namespace: str, name: str, password: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"username": "tether", "password": password},
    }
    apply_yaml(kubectl, json.dumps(body))


def everything_written(kubectl: Kubectl, namespace: str, agent: AgentProcess, db: Path) -> str:
    """What the agent wrote that others read: the status of the namespace's GitSources and
    Apps, its Events, the audit database's bytes and the agent's log (not the tenant's own
    spec, which holds whatever the tenant wrote)."""
    listed = json.loads(
        kubectl(
            "get", "gitsources.tether.dev,apps.tether.dev,events", "-n", namespace, "-o", "json"
        ).stdout
    )
    written = [
        json.dumps(item.get("status") if item["kind"] != "Event" else item)
        for item in listed["items"]
    ]
    audit = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())
    return "\n".join([*written, audit.decode(errors="replace"), agent.log.read_text()])


def forms(password: str) -> list[str]:
    """How a password can show: raw, percent-encoded, in a Basic header, JSON-escaped."""
    return [
        password,
        quote(password, safe=""),
        base64.b64encode(f"tether:{password}".encode()).decode(),
        json.dumps(password)[1:-1],
    ]


def test_a_token_file_is_refused_and_never_read(
    start_tenant_agent: Callable[..., AgentProcess],
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Critical: tokenFile sent any file of the agent's as a password to any URL. The file (here
    standing in for the ServiceAccount token) must never reach a listener of the tenant's."""
    token = tmp_path / "serviceaccount-token"
    token.write_text(AGENT_TOKEN)
    with Listener().running() as listener:
        agent = start_tenant_agent("--allow-loopback-http-credentials")
        source = git_source(
            namespace, "stolen", f"{listener.base}/repo.git", f", tokenFile: {token}"
        )
        apply_yaml(kubectl, source + "---\n" + app(namespace, "web", "stolen"))
        condition = refused(kubectl, namespace, "stolen")
        assert condition["reason"] == "TokenFileUnsupported"
        assert "spec.secretRef" in condition["message"]
        assert f"namespace {namespace}" in condition["message"]
        wait_for(
            lambda: (
                (c := ready(kubectl, "apps.tether.dev", namespace, "web"))
                and "tokenFile" in c.get("message", "")
            ),
            60,
            "the App to say why its source is not ready",
        )
        assert listener.raw == []  # nothing was fetched at all
    written = everything_written(kubectl, namespace, agent, tmp_path / "audit.db")
    assert all(form not in written for form in forms(AGENT_TOKEN))


@pytest.fixture
def victims_mirror(tmp_path: Path, namespace: str) -> Iterator[Path]:
    """Another tenant's private repository, fetched into the agent's cache as the agent does
    for that tenant (its namespace's cache directory), holding a Secret-like ConfigMap."""
    origin = Origin(tmp_path / "victim-origin")
    origin.commit(
        {
            "stolen.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\n"
            "data: {password: victims-database-password}\n"
        },
        message="the victim's secrets",
    )
    cache = default_cache_dir() / "tenants" / f"victim-of-{namespace}"
    fetch(str(origin.path), "main", cache_dir=cache)
    mirror = next((cache / "repos").glob("*.git"))
    yield mirror
    shutil.rmtree(cache, ignore_errors=True)


def test_hostile_urls_are_refused_by_the_agent(
    start_tenant_agent: Callable[..., AgentProcess],
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    victims_mirror: Path,
) -> None:
    """High: file:// and local paths read another tenant's mirror; Medium: remote helpers ran;
    credentials went over plain http or sat in the URL for all to read."""
    marker = tmp_path / "helper-ran"
    secret(kubectl, namespace, "creds", RIGHT_PASSWORD)
    with Listener().running() as listener:
        cases = {
            "mirror-url": (victims_mirror.as_uri(), "", "--allow-local-sources"),
            "mirror-path": (str(victims_mirror), "", "--allow-local-sources"),
            "ext-helper": (f"ext::sh -c touch% {marker}", "", "remote helper"),
            "fd-helper": ("fd::3", "", "remote helper"),
            "ftp": ("ftp://127.0.0.1:1/repo.git", "", "does not fetch from"),
            "plain-http": (
                f"{listener.base}/repo.git",
                ", secretRef: {name: creds}",
                "refusing to send credentials over plain http",
            ),
            "url-credentials": (
                "https://tether:hunter2-secret@git.example.invalid/repo.git",
                "",
                "the URL carries credentials",
            ),
        }
        agent = start_tenant_agent()
        apply_yaml(
            kubectl,
            "---\n".join(
                git_source(namespace, name, url, extra) for name, (url, extra, _) in cases.items()
            )
            + "---\n"
            + app(namespace, "thief", "mirror-url"),
        )
        for name, (_, _, expected) in cases.items():
            condition = refused(kubectl, namespace, name)
            assert expected in condition["message"], (name, condition)
            assert condition["reason"] == "FetchFailed"
        assert listener.raw == []
    assert not marker.exists()
    assert kubectl.get("configmap", "stolen", namespace) is None
    written = everything_written(kubectl, namespace, agent, tmp_path / "audit.db")
    assert "hunter2-secret" not in written
    assert all(form not in written for form in forms(RIGHT_PASSWORD))


def test_a_special_password_never_shows_in_status_audit_events_or_logs(
    start_tenant_agent: Callable[..., AgentProcess],
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Medium: a password with / # ? @ % (and a space) was shown in clear. It now goes to git
    through the credential helper, whole, and is masked wherever the fetch is reported."""
    origin = Origin(tmp_path / "origin")
    origin.commit(
        {
            "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: private}\n"
            "data: {from: the-private-repo}\n"
        },
        message="private manifests",
    )
    bare = origin.bare_clone(tmp_path / "served" / "repo.git")
    host = PrivateGitHost(bare, "tether", RIGHT_PASSWORD)
    secret(kubectl, namespace, "creds", WRONG_PASSWORD)
    with host.running():
        agent = start_tenant_agent("--allow-loopback-http-credentials")
        apply_yaml(
            kubectl,
            git_source(namespace, "private", host.url, ", secretRef: {name: creds}")
            + "---\n"
            + app(namespace, "web", "private", "app"),
        )
        condition = refused(kubectl, namespace, "private")
        assert "Authentication failed" in condition["message"] or "401" in condition["message"]
        assert host.authorizations and host.authorizations[-1] == f"tether:{WRONG_PASSWORD}"

        secret(kubectl, namespace, "creds", RIGHT_PASSWORD)
        kubectl(
            "annotate",
            "gitsources.tether.dev",
            "private",
            "-n",
            namespace,
            "--overwrite",
            f"{REQUESTED_ANNOTATION}=now",
        )
        wait_for(
            lambda: kubectl.get("configmap", "private", namespace),
            90,
            "the App to apply the private repository's ConfigMap",
        )
        wait_for(
            lambda: ready(kubectl, "apps.tether.dev", namespace, "web").get("status") == "True",
            60,
            "the App to be Ready",
        )
    written = everything_written(kubectl, namespace, agent, tmp_path / "audit.db")
    assert "applied" in written  # the audit and status were written: the check sees them
    for password in (WRONG_PASSWORD, RIGHT_PASSWORD):
        for form in forms(password):
            assert form not in written, form
        assert password.split("/")[1] not in written  # not even the part after a slash


def test_the_cli_still_reads_local_sources(tmp_path: Path) -> None:
    """The refusals are the agent's: `tether sync ./repo` on one's own disk still works."""
    origin = Origin(tmp_path / "mine")
    commit = origin.commit({"cm.yaml": "kind: ConfigMap\n"})
    artifact = fetch(str(origin.path), "main", cache_dir=tmp_path / "cache")
    assert artifact.revision.commit == commit


def test_an_ssh_source_uses_its_secrets_key_and_none_of_the_agents(
    start_tenant_agent: Callable[..., AgentProcess],
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The agent's own ssh keys would open every repository they open to every tenant; a
    GitSource's ssh key comes from its Secret (keys identity and known_hosts)."""
    record = tmp_path / "ssh-calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(
        f'#!/bin/sh\necho "argv: $*" >> {record}\n'
        'while [ $# -gt 0 ]; do [ "$1" = -i ] && cat "$2" >> ' + str(record) + "; shift; done\n"
        'echo "Permission denied (publickey)." >&2\nexit 255\n'
    )
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /agents/own/key")  # the machine's, ignored
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "deploy-key", "namespace": namespace},
        "stringData": {
            "identity": "tenant-deploy-key-material\n",
            "known_hosts": "h ssh-ed25519 A",
        },
    }
    apply_yaml(kubectl, json.dumps(body))
    start_tenant_agent()
    apply_yaml(
        kubectl,
        git_source(
            namespace,
            "over-ssh",
            "ssh://git@127.0.0.1:1/repo.git",
            ", secretRef: {name: deploy-key}",
        ),
    )
    condition = refused(kubectl, namespace, "over-ssh")
    assert "Permission denied" in condition["message"]
    assert "tenant-deploy-key-material" not in condition["message"]
    calls = record.read_text()
    assert "tenant-deploy-key-material" in calls
    assert "/agents/own/key" not in calls
    assert "IdentityAgent=none" in calls and "-F /dev/null" in calls


def test_a_github_app_token_endpoint_on_another_host_is_never_called(
    start_tenant_agent: Callable[..., AgentProcess], kubectl: Kubectl, namespace: str
) -> None:
    """A tenant's Secret names where the GitHub App's signed token request goes
    (githubAppAPIURL): the agent refuses any host but the source's own, and sends nothing."""
    with Listener().running() as listener:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "app-creds", "namespace": namespace},
            "stringData": {
                "githubAppID": "1",
                "githubAppInstallationID": "2",
                "githubAppPrivateKey": "not-a-key",
                "githubAppAPIURL": listener.base,
            },
        }
        kubectl("apply", "-f", "-", stdin=json.dumps(body))
        start_tenant_agent("--allow-loopback-http-credentials")
        apply_yaml(
            kubectl,
            git_source(
                namespace,
                "hub",
                "https://github.com/example/platform.git",
                ", secretRef: {name: app-creds}",
            ),
        )
        condition = refused(kubectl, namespace, "hub")
        assert "githubAppAPIURL" in condition["message"]
        assert "api.github.com" in condition["message"]
        assert listener.raw == []


@pytest.mark.parametrize(
    ("source", "api", "allowed"),
    [
        ("https://github.com/o/r.git", "https://api.github.com", True),
        ("https://ghe.example.com/o/r.git", "https://ghe.example.com/api/v3", True),
        ("https://github.com/o/r.git", "https://evil.example.com", False),
        ("https://github.com/o/r.git", "http://api.github.com", False),
        ("https://github.com/o/r.git", "https://api.github.com.evil.example", False),
    ],
)
def test_the_token_endpoint_rule(source: str, api: str, allowed: bool) -> None:
    rules = FetchRules.tenant()
    if allowed:
        rules.check_token_endpoint(source, api, "GitSource t/x")
    else:
        with pytest.raises(SourceError, match="githubAppAPIURL"):
            rules.check_token_endpoint(source, api, "GitSource t/x")
