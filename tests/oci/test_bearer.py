"""The bearer-token flow against the real registry configured for token auth, with the token
service played by a stand-in (tests/oci/token_service.py; in production it is the cloud
registry's auth service): the registry's challenge is followed, the token asked for with the
credentials, and the credentials never go anywhere else."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci.conftest import USER, write_manifests
from tests.oci.token_service import ISSUER, SERVICE, TokenService
from tether.devcluster.registry import LocalRegistry, TokenAuth, running_registry
from tether.errors import SourceError
from tether.source.oci import OCIAuth, TokenFile, fetch_artifact, push_artifact


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[LocalRegistry, TokenService, Path]]:
    password = secrets.token_urlsafe(16)
    password_file = tmp_path / "password"
    password_file.write_text(password)
    service = TokenService(tmp_path / "tokens", USER, password)
    token = TokenAuth(service.realm, SERVICE, ISSUER, service.certificate_path)
    try:
        with running_registry(tmp_path / "registry", token=token) as server:
            yield server, service, password_file
    finally:
        service.close()


def test_push_and_pull_follow_the_bearer_challenge(
    token_registry: tuple[LocalRegistry, TokenService, Path], tmp_path: Path
) -> None:
    server, service, password_file = token_registry
    auth = OCIAuth(TokenFile(password_file, USER), plain_http=True)
    ref = f"oci://{server.host}/team/app:v1"

    digest = push_artifact(ref, write_manifests(tmp_path / "src"), "s", "r", auth)
    fetched = fetch_artifact(ref, auth, tmp_path / "cache")

    assert fetched.digest == digest
    assert (fetched.root / "configmap.yaml").is_file()
    # The registry names the actions in no fixed order ("push,pull" or "pull,push").
    scopes = {_scope_actions(request["scope"]) for request in service.requests}
    assert ("repository:team/app", frozenset({"pull", "push"})) in scopes
    assert ("repository:team/app", frozenset({"pull"})) in scopes
    assert {request["service"] for request in service.requests} == {SERVICE}
    basic = "Basic " + base64.b64encode(f"{USER}:{password_file.read_text()}".encode()).decode()
    assert all(request["authorization"] == basic for request in service.requests)


def _scope_actions(scope: str) -> tuple[str, frozenset[str]]:
    """A token scope ``repository:NAME:ACTIONS`` as its resource and its set of actions."""
    resource, _, actions = scope.rpartition(":")
    return resource, frozenset(actions.split(","))


def test_a_wrong_password_is_refused_by_the_token_service_without_showing_it(
    token_registry: tuple[LocalRegistry, TokenService, Path], tmp_path: Path
) -> None:
    server, service, _ = token_registry
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-password-9931")
    auth = OCIAuth(TokenFile(wrong, USER), plain_http=True)
    with pytest.raises(SourceError) as refused:
        fetch_artifact(f"oci://{server.host}/team/app:v1", auth, tmp_path / "cache")
    message = str(refused.value)
    assert service.realm in message
    assert "refused the login" in message
    assert "wrong-password-9931" not in message


def test_credentials_are_not_sent_to_a_token_service_on_another_host(
    tmp_path: Path,
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("p-4242")
    service = TokenService(tmp_path / "tokens", USER, "p-4242")
    elsewhere = service.realm.replace("127.0.0.1", "localhost")
    token = TokenAuth(elsewhere, SERVICE, ISSUER, service.certificate_path)
    try:
        with running_registry(tmp_path / "registry", token=token) as server:
            auth = OCIAuth(TokenFile(password_file, USER), plain_http=True)
            with pytest.raises(SourceError, match="not the registry's host"):
                fetch_artifact(f"oci://{server.host}/team/app:v1", auth, tmp_path / "cache")
            assert service.requests == []
            trusted = OCIAuth(
                TokenFile(password_file, USER), plain_http=True, token_hosts=("localhost",)
            )
            with pytest.raises(SourceError, match="HTTP 404"):
                fetch_artifact(f"oci://{server.host}/team/app:v1", trusted, tmp_path / "cache")
            assert len(service.requests) == 1
    finally:
        service.close()
