"""The OCI client against a real registry: push and pull round trip, digests verified, the
cache, allow-lists, and the messages of every failure (never holding a credential)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.oci.conftest import USER, Registry, write_manifests
from tests.oci.redirecting_front import RedirectingFront
from tether.devcluster.registry import running_registry
from tether.errors import SourceError
from tether.source.oci import (
    OCIAuth,
    OCIReference,
    TokenFile,
    fetch_artifact,
    push_artifact,
)


def test_push_then_fetch_gives_the_same_files_and_digest(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    source = write_manifests(tmp_path / "src")
    (source / "nested").mkdir()
    (source / "nested" / "more.yaml").write_text("kind: List\n")
    ref = registry.ref(repository) + ":v1"

    digest = push_artifact(
        ref, source, "https://git.example/app.git", "main@sha1:abc", registry.auth
    )
    fetched = fetch_artifact(ref, registry.auth, tmp_path / "cache")

    assert fetched.digest == digest
    assert fetched.tag == "v1"
    assert fetched.revision == f"v1@{digest}"
    assert fetched.origin == "https://git.example/app.git"
    assert fetched.origin_revision == "main@sha1:abc"
    assert (fetched.root / "configmap.yaml").read_text() == (source / "configmap.yaml").read_text()
    assert (fetched.root / "nested" / "more.yaml").read_text() == "kind: List\n"


def test_pushing_the_same_directory_twice_gives_the_same_layer(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    source = write_manifests(tmp_path / "src")
    first = push_artifact(registry.ref(repository) + ":a", source, "s", "r", registry.auth)
    by_digest = fetch_artifact(f"{registry.ref(repository)}@{first}", registry.auth, tmp_path / "c")
    assert by_digest.tag == ""
    assert by_digest.revision == first


def test_a_moved_tag_is_seen_on_the_next_fetch(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    ref = registry.ref(repository) + ":stable"
    first = push_artifact(ref, write_manifests(tmp_path / "one"), "s", "1", registry.auth)
    assert fetch_artifact(ref, registry.auth, tmp_path / "c").digest == first
    second = push_artifact(
        ref, write_manifests(tmp_path / "two", data="two"), "s", "2", registry.auth
    )
    fetched = fetch_artifact(ref, registry.auth, tmp_path / "c")
    assert second != first
    assert fetched.digest == second
    assert "value: two" in (fetched.root / "configmap.yaml").read_text()


def test_a_digest_outside_the_allow_list_is_refused_before_any_blob(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    ref = registry.ref(repository) + ":v1"
    digest = push_artifact(ref, write_manifests(tmp_path / "src"), "s", "r", registry.auth)
    other = "sha256:" + "0" * 64
    with pytest.raises(SourceError) as refused:
        fetch_artifact(ref, registry.auth, tmp_path / "c", allowed_digests=(other,))
    assert digest in str(refused.value)
    assert "not in the allowed digests" in str(refused.value)
    assert not (tmp_path / "c").exists()
    assert (
        fetch_artifact(ref, registry.auth, tmp_path / "c", allowed_digests=(digest,)).digest
        == digest
    )


def test_a_blob_changed_in_the_registry_is_refused(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    ref = registry.ref(repository) + ":v1"
    push_artifact(
        ref, write_manifests(tmp_path / "src", data="tampered-test"), "s", "r", registry.auth
    )
    manifest = OCIReference.parse(ref)
    from tether.source.oci_client import RegistryClient

    with RegistryClient(manifest, registry.auth) as client:
        body, _, _ = client.manifest("v1")
    import json

    layer = json.loads(body)["layers"][0]["digest"].removeprefix("sha256:")
    stored = (
        registry.server.directory
        / "data/docker/registry/v2/blobs/sha256"
        / layer[:2]
        / layer
        / "data"
    )
    data = bytearray(stored.read_bytes())
    data[-9] ^= 0xFF  # one byte of the gzip trailer's CRC: same size, other content
    stored.write_bytes(bytes(data))
    assert hashlib.sha256(bytes(data)).hexdigest() != layer

    with pytest.raises(SourceError) as refused:
        fetch_artifact(ref, registry.auth, tmp_path / "c")
    message = str(refused.value)
    assert f"sha256:{layer}" in message
    assert "refused" in message
    assert not any((tmp_path / "c").glob("sha256-*"))


def test_a_wrong_password_is_named_without_showing_it(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password-4711")
    auth = OCIAuth(TokenFile(wrong, USER), plain_http=True)
    with pytest.raises(SourceError) as refused:
        fetch_artifact(registry.ref(repository) + ":v1", auth, tmp_path / "c")
    message = str(refused.value)
    assert f"http://{registry.host}" in message
    assert f"refused the credentials from token file {wrong}: check the username" in message
    assert "not-the-password-4711" not in message
    assert registry.password not in message


def test_no_credentials_says_a_login_is_needed(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match="requires a login"):
        fetch_artifact(registry.ref(repository) + ":v1", OCIAuth(plain_http=True), tmp_path / "c")


def test_an_unknown_tag_names_the_reference(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    with pytest.raises(SourceError) as refused:
        fetch_artifact(registry.ref(repository) + ":nope", registry.auth, tmp_path / "c")
    assert f"{repository}:nope" in str(refused.value)
    assert "HTTP 404" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("https://h/r:1", "not an OCI reference"),
        ("oci://user:pw@h/r:1", "credentials are not accepted"),
        ("oci://h/Upper:1", "not a repository name"),
        ("oci://h/r@sha256:abc", "not a sha256 digest"),
    ],
)
def test_bad_references_are_refused(text: str, problem: str) -> None:
    with pytest.raises(SourceError, match=problem) as refused:
        OCIReference.parse(text)
    assert "pw@" not in str(refused.value)


def test_references_parse() -> None:
    ref = OCIReference.parse("oci://127.0.0.1:5000/a/b/c:1.2.3_build@sha256:" + "a" * 64)
    assert (ref.registry, ref.repository, ref.tag) == ("127.0.0.1:5000", "a/b/c", "1.2.3_build")
    assert ref.reference == "sha256:" + "a" * 64
    assert OCIReference.parse("oci://h:5000/r").tag == ""


def test_a_pinned_artifact_in_the_cache_needs_no_registry(tmp_path: Path) -> None:
    with running_registry(tmp_path / "reg") as server:
        auth = OCIAuth(plain_http=True)
        ref = f"oci://{server.host}/pinned/app:v1"
        digest = push_artifact(ref, write_manifests(tmp_path / "src"), "git://x", "r9", auth)
        first = fetch_artifact(f"{ref}@{digest}", auth, tmp_path / "cache")
    again = fetch_artifact(f"{ref}@{digest}", auth, tmp_path / "cache")
    assert again == first
    assert again.origin_revision == "r9"
    with pytest.raises(SourceError) as down:
        fetch_artifact(ref, auth, tmp_path / "cache")
    assert f"http://{server.host}" in str(down.value)
    assert "check that the registry is running" in str(down.value)


def test_credentials_are_not_sent_where_a_blob_download_is_redirected(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    front = RedirectingFront(registry.server.url, repository, (USER, registry.password))
    try:
        ref = f"oci://{front.host}/{repository}:v1"
        digest = push_artifact(ref, write_manifests(tmp_path / "src"), "s", "r", registry.auth)
        fetched = fetch_artifact(ref, registry.auth, tmp_path / "cache")
    finally:
        front.close()
    assert fetched.digest == digest
    assert (fetched.root / "configmap.yaml").is_file()
    assert front.storage_authorizations == [""]


def test_https_with_the_registrys_ca(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("tls-pass-77")
    with running_registry(tmp_path / "reg", {USER: "tls-pass-77"}, tls=True) as server:
        auth = OCIAuth(TokenFile(password, USER), ca_file=server.ca_file)
        ref = f"oci://{server.host}/tls/app:v1"
        digest = push_artifact(ref, write_manifests(tmp_path / "src"), "s", "r", auth)
        assert fetch_artifact(ref, auth, tmp_path / "cache").digest == digest
        with pytest.raises(SourceError) as untrusted:
            fetch_artifact(ref, OCIAuth(TokenFile(password, USER)), tmp_path / "cache")
    message = str(untrusted.value)
    assert f"https://{server.host}" in message
    assert "CA file" in message
    assert "tls-pass-77" not in message


def test_a_blob_longer_than_its_descriptor_is_cut_off_and_refused(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    front = RedirectingFront(
        registry.server.url, repository, (USER, registry.password), extra=b"\0" * 65536
    )
    try:
        ref = f"oci://{front.host}/{repository}:v1"
        push_artifact(ref, write_manifests(tmp_path / "src"), "s", "r", registry.auth)
        with pytest.raises(SourceError) as refused:
            fetch_artifact(ref, registry.auth, tmp_path / "cache")
    finally:
        front.close()
    assert "sent more than the" in str(refused.value)
    assert f"http://{front.host}" in str(refused.value)
    assert not any((tmp_path / "cache").glob("sha256-*"))
