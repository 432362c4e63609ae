"""What a hostile source URL can make git do, with real git and real loopback servers: no
credential follows a redirect, crosses plain http or is spliced into a URL; no remote helper
runs; a tenant's fetch uses none of the machine's git configuration, credential helpers or ssh
settings (issue #12, part 2)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.hermetic import hermetic_git, machine_cache_dir_ignored  # noqa: F401  (fixtures)
from tests.security.sources_servers import Listener, PrivateGitHost
from tests.source.gitrepo import Origin
from tether.errors import SourceError
from tether.source import BasicAuth, FetchRules, SshKey, fetch
from tether.source.git import Deadline, Git, GitError
from tether.source.urls import Remote, parse_remote

# Every character the issue names, and a space: spliced into a URL, each would break it.
SPECIAL_PASSWORD = "p/ss#w?rd@x%41 y"


@pytest.fixture
def private_repo(tmp_path: Path) -> Path:
    origin = Origin(tmp_path / "origin")
    origin.commit({"app/cm.yaml": "kind: ConfigMap\n"}, message="private")
    return origin.bare_clone(tmp_path / "served" / "repo.git")


def _leaked(received: bytes, secret: str) -> bool:
    """The secret in what a server received: raw, in a Basic header, or percent-encoded."""
    forms = [secret.encode(), base64.b64encode(f"tether:{secret}".encode())]
    return any(form in received for form in forms)


def test_a_password_with_special_characters_reaches_git_intact(
    private_repo: Path, tmp_path: Path
) -> None:
    host = PrivateGitHost(private_repo, "tether", SPECIAL_PASSWORD)
    with host.running():
        artifact = fetch(
            host.url,
            "main",
            cache_dir=tmp_path / "cache",
            credentials=BasicAuth("tether", SPECIAL_PASSWORD),
        )
    assert (artifact.root / "app" / "cm.yaml").read_text() == "kind: ConfigMap\n"
    assert host.authorizations[-1] == f"tether:{SPECIAL_PASSWORD}"
    assert "tether" not in artifact.revision.url  # no userinfo at all in the revision
    config = (tmp_path / "cache" / "repos").glob("*.git/config")
    assert all(SPECIAL_PASSWORD not in path.read_text() for path in config)


def test_a_refused_special_password_is_never_in_the_error(
    private_repo: Path, tmp_path: Path
) -> None:
    host = PrivateGitHost(private_repo, "tether", "the-right-one")
    with host.running(), pytest.raises(SourceError) as caught:
        fetch(
            host.url,
            "main",
            cache_dir=tmp_path / "cache",
            credentials=BasicAuth("tether", SPECIAL_PASSWORD),
        )
    message = str(caught.value)
    assert "Authentication failed" in message or "401" in message
    assert SPECIAL_PASSWORD not in message
    assert "p/ss" not in message and "w?rd" not in message


@pytest.mark.parametrize("before_auth", [True, False], ids=["redirect-first", "auth-first"])
def test_credentials_never_follow_a_redirect_to_another_host(
    private_repo: Path, tmp_path: Path, before_auth: bool
) -> None:
    host = PrivateGitHost(private_repo, "tether", SPECIAL_PASSWORD)
    with Listener().running() as elsewhere, host.running():
        host.redirect_to, host.before_auth = elsewhere.base, before_auth
        with pytest.raises(SourceError):
            fetch(
                host.url,
                "main",
                cache_dir=tmp_path / "cache",
                credentials=BasicAuth("tether", SPECIAL_PASSWORD),
            )
    assert elsewhere.raw, "git never followed the redirect: the test proves nothing"
    assert elsewhere.authorizations == []
    assert not _leaked(elsewhere.received(), SPECIAL_PASSWORD)


def test_credentials_are_never_sent_over_plain_http_to_another_host(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="refusing to send credentials over plain http"):
        fetch(
            "http://git.example.invalid/org/repo.git",
            "main",
            cache_dir=tmp_path / "cache",
            credentials=BasicAuth("tether", SPECIAL_PASSWORD),
        )


def test_the_agent_sends_no_credentials_over_loopback_http_without_the_flag(
    tmp_path: Path,
) -> None:
    with (
        Listener().running() as listener,
        pytest.raises(SourceError, match="--allow-loopback-http-credentials"),
    ):
        fetch(
            f"{listener.base}/repo.git",
            "main",
            cache_dir=tmp_path / "cache",
            credentials=BasicAuth("tether", SPECIAL_PASSWORD),
            rules=FetchRules.tenant(),
        )
    assert listener.raw == []  # refused before git ran


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% {marker}",
        "fd::17",
        "anything::{marker}",
        "ftp://127.0.0.1:1/repo.git",
        "foo://127.0.0.1:1/repo.git",
    ],
)
def test_remote_helpers_and_other_schemes_are_refused(url: str, tmp_path: Path) -> None:
    marker = tmp_path / "helper-ran"
    with pytest.raises(SourceError, match=r"remote helper|does not fetch from"):
        fetch(url.format(marker=marker), "main", cache_dir=tmp_path / "cache")
    assert not marker.exists()


def test_a_git_daemon_url_is_fetched_with_its_own_protocol_only(tmp_path: Path) -> None:
    """git:// carries no credentials; the agent may fetch it (here: nothing listens)."""
    with pytest.raises(SourceError, match=r"cannot reach git://127\.0\.0\.1:1/x\.git") as caught:
        fetch("git://127.0.0.1:1/x.git", "main", cache_dir=tmp_path, rules=FetchRules.tenant())
    assert "not allowed" not in str(caught.value)


def test_git_itself_refuses_a_remote_helper_the_url_check_missed(tmp_path: Path) -> None:
    """Second line of defence: GIT_ALLOW_PROTOCOL names only the source's own protocol."""
    marker = tmp_path / "helper-ran"
    location = f"ext::sh -c touch% {marker}"
    remote = Remote(display="x", location=location, identity="x", local=False, scheme="https")
    git = Git(remote, Deadline(30))
    with pytest.raises(GitError) as caught:
        git.run("ls-remote", "--", location, network=True)
    assert "not allowed" in caught.value.reason
    assert not marker.exists()


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_the_agent_refuses_local_sources_unless_allowed(
    private_repo: Path, tmp_path: Path, form: str
) -> None:
    url = str(private_repo) if form == "path" else private_repo.as_uri()
    with pytest.raises(SourceError, match="--allow-local-sources"):
        fetch(url, "main", cache_dir=tmp_path / "cache", rules=FetchRules.tenant())
    allowed = FetchRules.tenant(allow_local=True)
    artifact = fetch(url, "main", cache_dir=tmp_path / "cache", rules=allowed)
    assert (artifact.root / "app" / "cm.yaml").is_file()


def test_the_agent_refuses_credentials_written_into_the_url(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"spec\.secretRef") as caught:
        fetch(
            "https://tether:hunter2-secret@git.example.invalid/x.git",
            "main",
            cache_dir=tmp_path / "cache",
            rules=FetchRules.tenant(),
        )
    assert "hunter2-secret" not in str(caught.value)


def test_a_tenant_fetch_ignores_the_machines_credential_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's own git credentials (a helper in its gitconfig) never go to a tenant's URL."""
    machine_config = tmp_path / "machine-gitconfig"
    machine_config.write_text(
        '[credential]\n\thelper = "!f() { echo username=agent; echo password=machine-secret; }; f"\n'
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(machine_config))
    with Listener().running() as listener:
        with pytest.raises(SourceError):
            fetch(f"{listener.base}/r.git", "main", cache_dir=tmp_path / "a", rules=FetchRules())
        assert "agent:machine-secret" in listener.authorizations  # the CLI may use the helper
        listener.authorizations.clear()
        with pytest.raises(SourceError):
            fetch(
                f"{listener.base}/r.git",
                "main",
                cache_dir=tmp_path / "b",
                rules=FetchRules.tenant(),
            )
    assert listener.authorizations == []


def test_a_tenant_ssh_fetch_ignores_the_machines_ssh_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIT_SSH_COMMAND (and with it the agent's keys and ssh config) is the machine's, not the
    tenant's: under the tenant rules git runs plain ssh with no identity of the machine's."""
    marker = tmp_path / "machine-ssh-ran"
    monkeypatch.setenv("GIT_SSH_COMMAND", f"touch {marker}; false")
    with pytest.raises(SourceError):
        fetch("ssh://git@127.0.0.1:1/x.git", "main", cache_dir=tmp_path / "a", rules=FetchRules())
    assert marker.exists()  # the CLI honours the user's GIT_SSH_COMMAND
    marker.unlink()
    with pytest.raises(SourceError):
        fetch(
            "ssh://git@127.0.0.1:1/x.git",
            "main",
            cache_dir=tmp_path / "b",
            rules=FetchRules.tenant(),
        )
    assert not marker.exists()


FAKE_SSH = """#!/bin/sh
# Stands in for ssh: records how git called it and the key file it was given, then fails.
record="{record}"
echo "argv: $*" >> "$record"
while [ $# -gt 0 ]; do
  if [ "$1" = "-i" ]; then
    echo "mode: $(stat -c %a "$2")" >> "$record"
    echo "key: $(cat "$2")" >> "$record"
    echo "dir: $(dirname "$2")" >> "$record"
  fi
  shift
done
echo "Permission denied (publickey)." >&2
exit 255
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A program named ssh first on PATH; returns the file it records its calls in."""
    bin_dir, record = tmp_path / "bin", tmp_path / "ssh-calls"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH.format(record=record))
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return record


def test_a_tenants_ssh_key_is_the_only_identity_and_is_removed_afterwards(
    fake_ssh: Path, tmp_path: Path
) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\ntenant-deploy-key-material\n-----END OPENSSH PRIVATE KEY-----"
    with pytest.raises(SourceError) as caught:
        fetch(
            "ssh://git@git.example.invalid/org/repo.git",
            "main",
            cache_dir=tmp_path / "cache",
            rules=FetchRules.tenant(),
            ssh_key=SshKey(key, "git.example.invalid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"),
        )
    assert "tenant-deploy-key-material" not in str(caught.value)
    calls = fake_ssh.read_text()
    argv = next(line for line in calls.splitlines() if line.startswith("argv:"))
    for option in ("-F /dev/null", "IdentitiesOnly=yes", "IdentityAgent=none"):
        assert option in argv
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=" in argv
    assert "mode: 600" in calls
    assert "tenant-deploy-key-material" in calls  # ssh was handed the tenant's key
    key_dir = Path(next(line for line in calls.splitlines() if line.startswith("dir:"))[5:])
    assert not key_dir.exists()  # and it is gone once the fetch is over


def test_an_ssh_key_is_refused_for_an_https_url(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="ssh URLs only"):
        fetch(
            "https://git.example.invalid/org/repo.git",
            "main",
            cache_dir=tmp_path / "cache",
            ssh_key=SshKey("key"),
        )


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("https://bob:p/ss#w?rd@git.example.com/org/repo.git", "p/ss#w?rd"),
        ("https://bob:p@ss word%@git.example.com/org/repo.git", "p@ss word%"),
        ("https://bob:p%2Fss%23w%3Frd@git.example.com/org/repo.git", "p/ss#w?rd"),
    ],
)
def test_a_raw_or_encoded_special_password_is_parsed_whole_and_masked(
    url: str, password: str
) -> None:
    remote = parse_remote(url)
    assert (remote.username, remote.password) == ("bob", password)
    assert remote.location == "https://git.example.com/org/repo.git"
    assert remote.display == "https://bob:***@git.example.com/org/repo.git"
    assert remote.scrub(f"fatal: {url} said {password}") == (f"fatal: {remote.display} said ***")


@pytest.mark.parametrize(
    "url",
    ["https://git.example.com:8443/org/repo@v2.git", "https://bob:1234/xyz@git.example.com/r.git"],
)
def test_a_port_then_an_at_sign_is_refused_as_ambiguous(url: str) -> None:
    with pytest.raises(SourceError, match="ambiguous") as caught:
        parse_remote(url)
    assert "xyz" not in str(caught.value)
