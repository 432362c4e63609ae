"""Charts from a Helm HTTP repository (a real aiohttp server over packages made by the real
``helm package``): version ranges, digest verification, the cache, basic auth."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helm.conftest import HelmRepository
from tether.errors import SourceError
from tether.source import ChartCredentials, ChartRepositoryAuth, ChartSource, fetch_chart

GROUP = "repo.tests.tether.dev"


def test_the_highest_version_in_range_is_fetched_verified_and_cached(
    helm_repository: HelmRepository, tmp_path: Path
) -> None:
    for version in ("1.0.0", "1.2.0", "2.0.0-rc.1", "2.0.0"):
        helm_repository.publish_shop(version, GROUP)
    cache = tmp_path / "cache"
    source = ChartSource(helm_repository.url, "shop", "^1")
    artifact = fetch_chart(source, cache)
    assert artifact.version == "1.2.0"
    data = artifact.path.read_bytes()
    assert artifact.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert artifact.path == cache / f"sha256-{hashlib.sha256(data).hexdigest()}.tgz"
    assert fetch_chart(ChartSource(helm_repository.url, "shop"), cache).version == "2.0.0"
    assert fetch_chart(
        ChartSource(helm_repository.url, "shop", ">=2.0.0-0 <2.0.0"), cache
    ).version == ("2.0.0-rc.1")
    helm_repository.requests.clear()
    assert fetch_chart(source, cache).path == artifact.path
    assert helm_repository.requests == ["/charts/index.yaml"]  # the package came from the cache


def test_a_package_that_does_not_match_the_index_digest_is_refused(
    helm_repository: HelmRepository, tmp_path: Path
) -> None:
    package = helm_repository.publish_shop("1.0.0", GROUP)
    package.write_bytes(package.read_bytes() + b"tampered")
    with pytest.raises(SourceError) as failure:
        fetch_chart(ChartSource(helm_repository.url, "shop"), tmp_path / "cache")
    assert "has SHA-256" in str(failure.value)
    assert "nothing was rendered" in str(failure.value)
    assert not list((tmp_path / "cache").glob("*.tgz"))


def test_a_cached_package_that_was_altered_is_downloaded_again(
    helm_repository: HelmRepository, tmp_path: Path
) -> None:
    helm_repository.publish_shop("1.0.0", GROUP)
    artifact = fetch_chart(ChartSource(helm_repository.url, "shop"), tmp_path / "cache")
    good = artifact.path.read_bytes()
    artifact.path.write_bytes(b"not the chart")
    assert (
        fetch_chart(ChartSource(helm_repository.url, "shop"), tmp_path / "cache").path.read_bytes()
        == good
    )


def test_no_matching_version_and_no_such_chart_say_what_exists(
    helm_repository: HelmRepository, tmp_path: Path
) -> None:
    helm_repository.publish_shop("1.0.0", GROUP)
    with pytest.raises(SourceError, match=r"no version matches '\^3' \(versions: 1.0.0\)"):
        fetch_chart(ChartSource(helm_repository.url, "shop", "^3"), tmp_path)
    with pytest.raises(SourceError, match=r"no such chart \(charts: shop\)"):
        fetch_chart(ChartSource(helm_repository.url, "shopp"), tmp_path)
    with pytest.raises(SourceError, match=r"invalid version range"):
        fetch_chart(ChartSource(helm_repository.url, "shop", ">>1"), tmp_path)


def test_basic_auth_comes_from_a_password_file_and_never_shows(
    private_helm_repository: HelmRepository, tmp_path: Path
) -> None:
    private_helm_repository.publish_shop("1.0.0", GROUP)
    password = tmp_path / "password"
    password.write_text("wrong-password\n")
    source = ChartSource(
        private_helm_repository.url, "shop", auth=ChartRepositoryAuth("reader", password)
    )
    with pytest.raises(SourceError) as failure:
        fetch_chart(source, tmp_path / "cache")
    assert "HTTP 401" in str(failure.value)
    assert f"refused the credentials from password file {password}" in str(failure.value)
    assert "wrong-password" not in str(failure.value)
    password.write_text("s3cret-repo-pass\n")  # rotated: read again on the next fetch
    assert fetch_chart(source, tmp_path / "cache").version == "1.0.0"
    in_url = private_helm_repository.url.replace("http://", "http://reader:s3cret-repo-pass@")
    artifact = fetch_chart(ChartSource(in_url, "shop"), tmp_path / "cache")
    assert artifact.version == "1.0.0"
    assert "s3cret-repo-pass" not in artifact.url
    with pytest.raises(SourceError) as failure:
        fetch_chart(ChartSource(in_url.replace("s3cret", "wrong"), "shop"), tmp_path / "cache")
    assert "http://reader:***@127.0.0.1" in str(failure.value)
    assert "refused the credentials from the repository URL" in str(failure.value)
    assert "wrong-repo-pass" not in str(failure.value)


def test_refused_credentials_from_a_secret_name_the_secret_not_a_password_file(
    private_helm_repository: HelmRepository, tmp_path: Path
) -> None:
    private_helm_repository.publish_shop("1.0.0", GROUP)
    from_secret = ChartCredentials("reader", "not-it-0815", "Secret team-a/repo-login")
    with pytest.raises(SourceError) as failure:
        fetch_chart(ChartSource(private_helm_repository.url, "shop", auth=from_secret), tmp_path)
    message = str(failure.value)
    assert "HTTP 401" in message
    assert "refused the credentials from Secret team-a/repo-login" in message
    assert "password file" not in message
    assert "not-it-0815" not in message
    with pytest.raises(SourceError) as failure:
        fetch_chart(ChartSource(private_helm_repository.url, "shop"), tmp_path)
    assert "the repository requires a login: give a username and a password file, or a Secret" in (
        str(failure.value)
    )
