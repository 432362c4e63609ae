"""Semantic versions, npm-style ranges, and ``fetch(url, "semver:<range>")`` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.source.gitrepo import Origin
from tether.errors import SourceError
from tether.source import fetch
from tether.source.semver import RangeError, Version, parse_range

# --- versions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", Version(1, 2, 3)),
        ("v1.2.3", Version(1, 2, 3)),
        ("0.0.0", Version(0, 0, 0)),
        ("1.10.0-rc.1", Version(1, 10, 0, ("rc", 1))),
        ("1.0.0-alpha-1.x-y", Version(1, 0, 0, ("alpha-1", "x-y"))),
        ("1.0.0+build.7", Version(1, 0, 0)),
        ("1.0.0-0", Version(1, 0, 0, (0,))),
    ],
)
def test_version_parses(text: str, expected: Version) -> None:
    assert Version.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1.2", "1", "v1.2", "01.2.3", "1.02.3", "1.2.03", "1.2.3-01", "1.2.3-", "1.2.3+", "V1.2.3",
     "1.2.3.4", "release-1.2.3", "1.2.3-rc..1", " 1.2.3", "latest", ""],
)  # fmt: skip
def test_not_a_version(text: str) -> None:
    assert Version.parse(text) is None


def test_precedence_follows_semver_org() -> None:
    ordered = [
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0-0", "2.0.0",
    ]  # fmt: skip
    versions = [Version.parse(text) for text in ordered]
    assert sorted(reversed(versions)) == versions  # type: ignore[type-var]


def test_build_metadata_does_not_count() -> None:
    assert Version.parse("1.0.0+a") == Version.parse("1.0.0+b")
    assert str(Version.parse("v1.0.0-rc.1+b.2")) == "1.0.0-rc.1+b.2"


# --- ranges ---------------------------------------------------------------------------------

RANGES = [
    # range, matching versions, versions that do not match
    (">=1.2.0 <2.0.0", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0", "1.5.0-rc.1"]),
    (">=1.2.0, <2.0.0", ["1.2.0"], ["2.0.0"]),
    (">= 1.2 < 2", ["1.2.0", "1.99.0"], ["1.1.0", "2.0.0"]),
    ("=1.2.3", ["1.2.3", "1.2.3+build"], ["1.2.4", "1.2.3-rc.1"]),
    ("1.2.3", ["1.2.3"], ["1.2.2"]),
    ("v1.2.3", ["1.2.3"], ["1.2.4"]),
    (">1.2.3", ["1.2.4", "2.0.0"], ["1.2.3"]),
    (">1.2", ["1.3.0"], ["1.2.9"]),
    (">1", ["2.0.0"], ["1.9.9"]),
    (">=1.2", ["1.2.0"], ["1.1.9"]),
    ("<1.2.3", ["1.2.2"], ["1.2.3", "1.2.3-rc.1"]),
    ("<1.2", ["1.1.9"], ["1.2.0"]),
    ("<=1.2.3", ["1.2.3"], ["1.2.4"]),
    ("<=1.2", ["1.2.9"], ["1.3.0"]),
    ("<=1.4.x", ["1.4.9"], ["1.5.0"]),
    ("1.x", ["1.0.0", "1.99.0"], ["0.9.0", "2.0.0", "2.0.0-rc.1"]),
    ("1.X", ["1.3.0"], ["2.0.0"]),
    ("1.*", ["1.3.0"], ["2.0.0"]),
    ("1", ["1.3.0"], ["2.0.0"]),
    ("1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
    ("1.2.x", ["1.2.0"], ["1.3.0"]),
    ("1.x.3", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("*", ["0.0.0", "99.0.0"], ["1.0.0-rc.1"]),
    ("x", ["1.0.0"], []),
    ("~1.4", ["1.4.0", "1.4.9"], ["1.3.9", "1.5.0"]),
    ("~1.4.2", ["1.4.2", "1.4.9"], ["1.4.1", "1.5.0"]),
    ("~>1.4.2", ["1.4.2"], ["1.5.0"]),
    ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("~0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
    ("~1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.10", "1.2.3", "1.2.9"], ["1.2.3-beta.1"]),
    ("^2", ["2.0.0", "2.9.9"], ["1.9.9", "3.0.0", "3.0.0-rc.1"]),
    ("^1.4.2", ["1.4.2", "1.99.0"], ["1.4.1", "2.0.0"]),
    ("^1.2", ["1.2.0"], ["1.1.9", "2.0.0"]),
    ("^0.4.2", ["0.4.2", "0.4.9"], ["0.5.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
    ("^0.0", ["0.0.0", "0.0.9"], ["0.1.0"]),
    ("^0.x", ["0.0.0", "0.9.0"], ["1.0.0"]),
    ("^0", ["0.9.0"], ["1.0.0"]),
    ("^1.x", ["1.0.0"], ["2.0.0"]),
    ("^1.2.3-rc.1", ["1.2.3-rc.1", "1.2.3-rc.2", "1.2.3", "1.9.0"], ["1.2.3-beta", "2.0.0-0"]),
    ("1.2 - 1.4", ["1.2.0", "1.4.9"], ["1.1.9", "1.5.0"]),
    ("1.2.3 - 2.3.4", ["1.2.3", "2.3.4"], ["1.2.2", "2.3.5"]),
    ("1.2.3 - 2", ["2.9.0"], ["3.0.0"]),
    ("* - 2", ["0.1.0"], ["3.0.0"]),
    ("^1 || ^3", ["1.0.0", "3.1.0"], ["2.0.0", "4.0.0"]),
    ("<1.0.0 || >=2.0.0 <2.1.0", ["0.9.0", "2.0.5"], ["1.5.0", "2.1.0"]),
    ("1.2.3-rc.1", ["1.2.3-rc.1"], ["1.2.3", "1.2.3-rc.2"]),
    (">=2.0.0-0", ["2.0.0-rc.1", "2.1.0-alpha", "2.0.0"], ["1.9.9", "1.9.9-rc.1"]),
    (">=1.0.0 <2.0.0 || >=3.0.0-0", ["3.0.0-rc.1", "1.5.0"], ["1.5.0-rc.1"]),
    (">*", [], ["0.0.0", "1.0.0"]),
    ("<0.0.0", [], ["0.0.0"]),
]


@pytest.mark.parametrize(("text", "good", "bad"), RANGES, ids=[r[0] for r in RANGES])
def test_range(text: str, good: list[str], bad: list[str]) -> None:
    wanted = parse_range(text)
    for version in good:
        assert wanted.matches(Version.parse(version)), f"{version} should match {text}"  # type: ignore[arg-type]
    for version in bad:
        assert not wanted.matches(Version.parse(version)), f"{version} should not match {text}"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("~1.4", ">=1.4.0 <1.5.0-0"),
        ("^0.0.3", ">=0.0.3 <0.0.4-0"),
        ("1.2 - 1.4", ">=1.2.0 <1.5.0-0"),
        ("1.x || >=3", ">=1.0.0 <2.0.0-0 || >=3.0.0"),
        ("*", "*"),
    ],
)
def test_range_desugars(text: str, normal: str) -> None:
    assert str(parse_range(text)) == normal


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("^1 ||", "empty alternative"),
        ("|| ^1", "empty alternative"),
        ("1.2.3.4", "'1.2.3.4' is not a version"),
        (">=1.2.a", "is not a version"),
        ("01.2.3", "is not a version"),
        ("=>1.2.3", "unexpected '=>1.2.3'"),
        ("1.2.3 - ", "'-' is not a version"),
        (">=1.2.3 - 2", "'>=1.2.3' is not a version"),
        ("1.2-rc.1", "'1.2-rc.1' is not a version"),
        ("1.2.x-rc.1", "needs a full version"),
        ("1.2.3-rc.01", "leading zero"),
        ("!1.2.3", "unexpected '!1.2.3'"),
        ("1" * 300, "longer than"),
    ],
)
def test_invalid_range(text: str, complaint: str) -> None:
    with pytest.raises(RangeError, match=complaint):
        parse_range(text)


TAGS = ["v1.0.0", "v1.2.3", "v1.10.0", "v2.0.0-rc.1", "v2.0.0", "latest", "release-3"]


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("*", "v2.0.0"),
        ("^1", "v1.10.0"),
        ("~1.2", "v1.2.3"),
        ("<1.2", "v1.0.0"),
        (">=2.0.0-0", "v2.0.0"),
        ("2.0.0-rc.1", "v2.0.0-rc.1"),
        (">=2.0.0-0 <2.0.0", "v2.0.0-rc.1"),
        ("^3", None),
    ],
)
def test_highest(text: str, chosen: str | None) -> None:
    assert parse_range(text).highest(TAGS) == chosen


def test_highest_breaks_ties_by_name() -> None:
    assert parse_range("1.x").highest(["1.2.3", "v1.2.3", "1.2.3+b"]) == "v1.2.3"


def test_nearest_tags_surround_the_range() -> None:
    tags = [f"v1.{minor}.0" for minor in range(20)]
    assert parse_range("^2").nearest(tags) == [f"v1.{m}.0" for m in range(14, 20)]
    assert parse_range("~0.3").nearest(tags) == [f"v1.{m}.0" for m in range(6)]
    assert parse_range("1.10.5").nearest(tags, count=4) == [
        "v1.9.0",
        "v1.10.0",
        "v1.11.0",
        "v1.12.0",
    ]


# --- fetch ----------------------------------------------------------------------------------


@pytest.fixture
def tagged(origin: Origin) -> dict[str, str]:
    """The origin with tags v1.0.0, v1.2.3, v1.10.0, v2.0.0-rc.1 (annotated), v2.0.0: tag -> commit."""
    commits = {}
    for tag in ["v1.0.0", "v1.2.3", "v1.10.0", "v2.0.0-rc.1", "v2.0.0"]:
        commits[tag] = origin.commit({"version.txt": tag}, message=f"release {tag}")
        if "rc" in tag:
            origin.git("tag", "--annotate", tag, "--message", f"candidate {tag}")
        else:
            origin.git("tag", tag)
    origin.commit({"version.txt": "next"}, message="after the last release")
    return commits


@pytest.mark.parametrize(
    ("wanted", "tag"),
    [
        ("semver:*", "v2.0.0"),
        ("semver:>=1.2.0 <2.0.0", "v1.10.0"),
        ("semver:~1.2", "v1.2.3"),
        ("semver:^1", "v1.10.0"),
        ("semver:1.x", "v1.10.0"),
        ("semver:1.0 - 1.9", "v1.2.3"),
        ("semver:<1.2.3", "v1.0.0"),
        ("semver:>=2.0.0-0 <2.0.0", "v2.0.0-rc.1"),
        ("semver:^2.0.0-0", "v2.0.0"),
    ],
)
def test_fetch_highest_matching_tag(
    origin: Origin, cache: Path, tagged: dict[str, str], wanted: str, tag: str
) -> None:
    artifact = fetch(str(origin.path), wanted, cache_dir=cache)
    assert (artifact.revision.ref, artifact.revision.commit) == (tag, tagged[tag])
    assert (artifact.root / "version.txt").read_text() == tag


def test_fetch_follows_new_tags(origin: Origin, cache: Path, tagged: dict[str, str]) -> None:
    assert fetch(str(origin.path), "semver:^1", cache_dir=cache).revision.ref == "v1.10.0"
    commit = origin.commit({"version.txt": "v1.11.0"}, message="release v1.11.0")
    origin.git("tag", "v1.11.0")
    revision = fetch(str(origin.path), "semver:^1", cache_dir=cache).revision
    assert (revision.ref, revision.commit) == ("v1.11.0", commit)
    origin.git("tag", "--delete", "v1.11.0")
    assert fetch(str(origin.path), "semver:^1", cache_dir=cache).revision.ref == "v1.10.0"


def test_no_matching_tag_lists_the_nearest(
    origin: Origin, cache: Path, tagged: dict[str, str]
) -> None:
    with pytest.raises(SourceError) as caught:
        fetch(str(origin.path), "semver:^3", cache_dir=cache)
    message = str(caught.value)
    assert f"no tag of {origin.path} matches the semver range '^3'" in message
    assert "nearest version tags: v1.0.0, v1.2.3, v1.10.0, v2.0.0-rc.1, v2.0.0" in message
    assert not (cache / "artifacts").exists()


def test_no_match_explains_pre_releases(
    origin: Origin, cache: Path, tagged: dict[str, str]
) -> None:
    with pytest.raises(SourceError, match=r"pre-release tags match only when the range names"):
        fetch(str(origin.path), "semver:>1.10.0 <2.0.0", cache_dir=cache)


def test_no_version_tags_at_all(origin: Origin, cache: Path) -> None:
    origin.git("tag", "latest")
    with pytest.raises(SourceError, match=r"it has no version tags \(tags: latest\)"):
        fetch(str(origin.path), "semver:*", cache_dir=cache)


def test_invalid_range_fails_before_any_network(cache: Path) -> None:
    url = "https://user:secret@127.0.0.1:1/x.git"
    with pytest.raises(SourceError) as caught:
        fetch(url, "semver:>=1.2.3.4", cache_dir=cache, timeout=5)
    message = str(caught.value)
    assert message.startswith(
        "invalid semver range '>=1.2.3.4' for https://user:***@127.0.0.1:1/x.git"
    )
    assert "secret" not in message
    assert not cache.exists()


def test_empty_range_is_refused(origin: Origin, cache: Path) -> None:
    with pytest.raises(SourceError, match="invalid semver range"):
        fetch(str(origin.path), "semver:", cache_dir=cache)
