"""Short-lived credentials: a token file rotated under a running process, and GitHub App tokens.

Everything is real: git fetches over HTTP from a private host on 127.0.0.1 that checks basic
auth, and GitHub App tokens are minted by a fake GitHub API (``FakeGitHubApi``) that verifies the
app's RS256 JWT with its public key. Only the clock is injected, so expiry is instant to reach.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.source.gitrepo import Origin
from tests.source.servers import FakeGitHubApi, FakeGitHubState, GitHttpServer
from tether.errors import SourceError
from tether.source import CredentialProvider, GitHubApp, TokenFile, fetch

TOKEN_A = "tok-A-0123456789abcdef"
TOKEN_B = "tok-B-fedcba9876543210"
APP_ID = "424242"
INSTALLATION = "31337"
USER = "x-access-token"


class FakeClock:
    """A Unix clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def everything_in(directory: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in directory.rglob("*") if p.is_file() and not p.is_symlink()
    )


@pytest.fixture
def host(origin: Origin, tmp_path: Path) -> Iterator[GitHttpServer]:
    with GitHttpServer(origin, tmp_path / "www").running() as server:
        yield server


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret" / "token"
    path.parent.mkdir()
    path.write_text(TOKEN_A + "\n")
    return path


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def github(
    app_key: rsa.RSAPrivateKey, clock: FakeClock, host: GitHttpServer
) -> Iterator[FakeGitHubApi]:
    """The fake GitHub: every token it mints is accepted by the git host from then on."""
    state = FakeGitHubState(
        app_id=APP_ID,
        installation_id=INSTALLATION,
        public_key=app_key.public_key(),
        clock=clock,
        on_mint=lambda token: host.accepted.add((USER, token)),
    )
    with FakeGitHubApi(state).running() as api:
        yield api


def app(
    api_url: str, key: rsa.RSAPrivateKey, clock: Callable[[], float], **kwargs: Any
) -> GitHubApp:
    return GitHubApp(APP_ID, INSTALLATION, pem(key), api_url=api_url, clock=clock, **kwargs)


# --- TokenFile --------------------------------------------------------------------------------


def test_token_file_rotation_is_used_by_the_next_fetch(
    host: GitHttpServer, token_file: Path, origin: Origin, cache: Path
) -> None:
    provider = TokenFile(token_file)
    host.accept_only(USER, TOKEN_A)
    first = fetch(host.url, "main", cache_dir=cache, credentials=provider)
    assert first.revision.commit == origin.head()

    token_file.write_text(TOKEN_B)
    host.accept_only(USER, TOKEN_B)
    new = host.push({"rotated.yaml": "kind: ConfigMap\n"})
    second = fetch(host.url, "main", cache_dir=cache, credentials=provider)

    assert second.revision.commit == new
    assert (second.root / "rotated.yaml").is_file()
    assert second.revision.url == host.url
    assert len(list((cache / "repos").glob("*.git"))) == 1, "rotating keeps the mirror"


def test_a_custom_username_is_sent(host: GitHttpServer, token_file: Path, cache: Path) -> None:
    host.accept_only("oauth2", TOKEN_A)
    fetch(host.url, "main", cache_dir=cache, credentials=TokenFile(token_file, "oauth2"))
    assert "oauth2" in host.attempts


def test_a_wrong_token_is_reported_without_it(
    host: GitHttpServer, token_file: Path, cache: Path
) -> None:
    host.accept_only(USER, TOKEN_B)
    with pytest.raises(SourceError) as caught:
        fetch(host.url, "main", cache_dir=cache, credentials=TokenFile(token_file))
    message = str(caught.value)
    assert message.startswith(f"cannot reach {host.url} (ref main): ")
    assert "Authentication failed" in message
    assert "check the URL, network and credentials" in message
    assert TOKEN_A not in message
    assert TOKEN_B not in message


def test_the_token_never_reaches_a_command_line_the_cache_or_the_revision(
    host: GitHttpServer, token_file: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def recording_popen(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append((list(args), dict(kwargs.get("env") or {})))
        return real_popen(args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    host.accept_only(USER, TOKEN_A)
    artifact = fetch(host.url, "main", cache_dir=cache, credentials=TokenFile(token_file))

    assert started, "git ran"
    for argv, env in started:
        assert not any(TOKEN_A in arg for arg in argv)
        secret_vars = [name for name, value in env.items() if TOKEN_A in value]
        assert secret_vars in ([], ["TETHER_GIT_PASSWORD"])
    assert any(env.get("TETHER_GIT_PASSWORD") == TOKEN_A for _, env in started)
    assert TOKEN_A not in str(artifact.revision.to_dict())
    assert TOKEN_A.encode() not in everything_in(cache)


def test_the_provider_wins_over_credentials_in_the_url(
    host: GitHttpServer, token_file: Path, cache: Path
) -> None:
    host.accept_only(USER, TOKEN_A)
    url = host.url.replace("http://", "http://alice:stale-password@")
    artifact = fetch(url, "main", cache_dir=cache, credentials=TokenFile(token_file))
    assert artifact.revision.url == host.url
    assert host.attempts and set(host.attempts) == {USER}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "does not exist"),
        ("  \n", "is empty"),
        ("first\nsecond\n", "holds more than one line"),
    ],
)
def test_an_unusable_token_file_is_named_never_its_content(
    tmp_path: Path, cache: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SourceError) as caught:
        fetch(
            "https://git.example.com/org/gitops.git",
            "main",
            cache_dir=cache,
            credentials=TokenFile(path),
        )
    message = str(caught.value)
    assert message.startswith("cannot fetch https://git.example.com/org/gitops.git (ref main): ")
    assert f"token file {path} {problem}" in message
    assert "first" not in message
    assert "second" not in message


@pytest.mark.parametrize("url", ["ssh://git@127.0.0.1:9/none.git", "git@127.0.0.1:none.git"])
def test_token_credentials_are_refused_for_ssh(url: str, token_file: Path, cache: Path) -> None:
    with pytest.raises(SourceError, match="apply to http\\(s\\) URLs only"):
        fetch(url, "main", cache_dir=cache, credentials=TokenFile(token_file))


def test_token_credentials_are_refused_for_a_local_path(
    origin: Origin, token_file: Path, cache: Path
) -> None:
    with pytest.raises(SourceError, match="apply to http\\(s\\) URLs only"):
        fetch(str(origin.path), credentials=TokenFile(token_file), cache_dir=cache)


def test_any_object_with_current_is_a_provider(host: GitHttpServer, cache: Path) -> None:
    class Vault:
        calls = 0

        def current(self) -> tuple[str, str]:
            self.calls += 1
            return "ci-bot", TOKEN_B

    vault = Vault()
    provider: CredentialProvider = vault
    host.accept_only("ci-bot", TOKEN_B)
    fetch(host.url, "main", cache_dir=cache, credentials=provider)
    fetch(host.url, "main", cache_dir=cache, credentials=provider)
    assert vault.calls == 2, "asked once per fetch"


# --- GitHubApp --------------------------------------------------------------------------------


def test_github_app_token_is_minted_once_and_reused(
    github: FakeGitHubApi,
    host: GitHttpServer,
    app_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    origin: Origin,
    cache: Path,
) -> None:
    provider = app(github.url, app_key, clock)
    first = fetch(host.url, "main", cache_dir=cache, credentials=provider)
    second = fetch(host.url, "main", cache_dir=cache, credentials=provider)

    assert first.revision.commit == second.revision.commit == origin.head()
    assert len(github.state.minted) == 1
    (request,) = github.state.requests
    assert request["path"] == f"/app/installations/{INSTALLATION}/access_tokens"
    assert request["headers"]["accept"] == "application/vnd.github+json"
    (claims,) = github.state.claims
    assert claims == {"iss": APP_ID, "iat": int(clock.now) - 60, "exp": int(clock.now) + 540}
    assert set(host.attempts) == {USER}


def test_github_app_mints_again_five_minutes_before_expiry(
    github: FakeGitHubApi,
    host: GitHttpServer,
    app_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    cache: Path,
) -> None:
    provider = app(github.url, app_key, clock)
    fetch(host.url, "main", cache_dir=cache, credentials=provider)
    (old,) = github.state.minted

    clock.advance(3600 - 300 - 1)
    assert provider.current() == (USER, old)
    assert len(github.state.minted) == 1

    clock.advance(1)
    host.accepted.discard((USER, old))  # GitHub would let it expire; the host refuses it now
    new = host.push({"later.yaml": "kind: ConfigMap\n"})
    artifact = fetch(host.url, "main", cache_dir=cache, credentials=provider)

    assert artifact.revision.commit == new
    assert len(github.state.minted) == 2
    assert github.state.minted[1] != old
    assert provider.current() == (USER, github.state.minted[1])


def test_github_app_with_the_wrong_key_is_refused_without_secrets(
    github: FakeGitHubApi, host: GitHttpServer, clock: FakeClock, cache: Path
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider = app(github.url, other_key, clock)
    with pytest.raises(SourceError) as caught:
        fetch(host.url, "main", cache_dir=cache, credentials=provider)
    message = str(caught.value)

    assert message.startswith(f"cannot fetch {host.url} (ref main): ")
    assert f"GitHub App '{APP_ID}' (installation '{INSTALLATION}') at {github.url}" in message
    assert "HTTP 401 (A JSON web token could not be decoded)" in message
    assert "private key belongs to this app" in message
    (request,) = github.state.requests
    jwt = request["headers"]["authorization"].removeprefix("Bearer ")
    for secret in (jwt, *jwt.split(".")):
        assert secret not in message
    assert "PRIVATE KEY" not in message
    assert github.state.minted == []
    assert host.attempts == [], "git never ran without a token"


def test_github_app_for_another_installation_gets_a_404_hint(
    github: FakeGitHubApi, app_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    provider = GitHubApp(APP_ID, "999", pem(app_key), api_url=github.url, clock=clock)
    with pytest.raises(SourceError, match=r"HTTP 404 \(Not Found\); check the installation ID"):
        provider.current()


def test_github_app_with_an_expired_clock_is_refused(
    github: FakeGitHubApi, app_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    provider = app(github.url, app_key, lambda: clock.now - 3600)
    with pytest.raises(SourceError, match="HTTP 401"):
        provider.current()


def test_github_app_does_not_follow_redirects(
    github: FakeGitHubApi, app_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    elsewhere = FakeGitHubState(
        APP_ID, INSTALLATION, app_key.public_key(), clock, on_mint=lambda _: None
    )
    with FakeGitHubApi(elsewhere).running() as other:
        github.state.redirect_to = f"{other.url}/app/installations/{INSTALLATION}/access_tokens"
        with pytest.raises(SourceError, match=r"HTTP 307.*redirects"):
            app(github.url, app_key, clock).current()
    assert other.state.requests == [], "the JWT went nowhere else"


def test_github_app_answer_without_a_token(
    github: FakeGitHubApi, app_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    github.state.answer_with = b"<html>not the API</html>"
    with pytest.raises(SourceError, match="answered without a usable token and expires_at"):
        app(github.url, app_key, clock).current()


def test_github_app_unreachable(app_key: rsa.RSAPrivateKey, clock: FakeClock) -> None:
    with pytest.raises(SourceError, match=r"cannot reach GitHub App .* at http://127\.0\.0\.1:9"):
        app("http://127.0.0.1:9", app_key, clock).current()


def test_github_app_silent_api_times_out(app_key: rsa.RSAPrivateKey, clock: FakeClock) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(SourceError, match=r"timed out after 0\.5s asking GitHub App"):
            app(url, app_key, clock, timeout=0.5).current()


@pytest.mark.parametrize(
    ("installation", "key", "problem"),
    [
        ("abc", None, "the installation ID must be a number"),
        (
            INSTALLATION,
            b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
            "not an unencrypted PEM RSA private key",
        ),
        (INSTALLATION, b"", "not an unencrypted PEM RSA private key"),
    ],
)
def test_github_app_settings_are_checked_up_front(
    app_key: rsa.RSAPrivateKey, installation: str, key: bytes | None, problem: str
) -> None:
    with pytest.raises(SourceError) as caught:
        GitHubApp(APP_ID, installation, key if key is not None else pem(app_key))
    assert problem in str(caught.value)
    assert "c2VjcmV0" not in str(caught.value)


def test_github_app_repr_holds_no_key(app_key: rsa.RSAPrivateKey) -> None:
    provider = GitHubApp(APP_ID, INSTALLATION, pem(app_key))
    assert repr(provider) == (
        f"GitHubApp(app_id='{APP_ID}', installation_id='{INSTALLATION}', "
        "api_url='https://api.github.com')"
    )
