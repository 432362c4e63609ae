"""What a render may read and how long it may run, below the sync: the glob rules that decide
a team's paths, the confined copy kustomize builds in, and the time limit on the real kustomize
(a kustomization whose build grows exponentially, and one that loops)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.render.conftest import cached_kustomize
from tether.core.repopath import UnsafePath, normal_path
from tether.errors import RenderError
from tether.policy.access import PathLimits, Tenancy, path_violations
from tether.policy.config import ConfigError, parse
from tether.policy.globs import covers, matches, may_match_under
from tether.render import RenderSettings, render
from tether.render._tree import Tree
from tether.render._view import confined_view

WEB = PathLimits("team 'web'", ("apps/web/**", "apps/*/shared"))


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def configmap(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("apps/web/**", "apps/web", True),
        ("apps/web/**", "apps/web/overlays/prod/x.yaml", True),
        ("apps/web/**", "apps/webshop", False),
        ("apps/*", "apps/web", True),
        ("apps/*", "apps/web/base", False),  # * never crosses /
        ("apps/*/base", "apps/web/base", True),
        ("apps/**/base", "apps/web/team/base", True),
        ("**/base", "base", True),
        ("apps/web/", "apps/web", True),
        ("./apps/web/**", "apps/web/cm.yaml", True),
        ("apps/web", "apps/web/../infra", False),
    ],
)
def test_one_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


def test_limits_cover_a_directory_and_what_is_in_it() -> None:
    assert covers(["apps/*"], "apps/web/base/deployment.yaml")
    assert not covers(["apps/*"], "platform/secret.yaml")
    assert WEB.allows("apps/api/shared/cm.yaml") and not WEB.allows("apps/api/base/cm.yaml")
    assert may_match_under("apps/*/shared", "apps/api") and not may_match_under("apps/web/**", "x")
    assert WEB.may_contain(".") and not WEB.may_contain("platform")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("apps/web/../../infra", "'..' segment"),
        ("/etc", "absolute"),
        ("apps\\web", "backslash"),
        ("apps/web\x00", "NUL"),
        ("apps/\x1b[2Jweb", "control character"),
    ],
)
def test_unsafe_paths_are_refused(path: str, reason: str) -> None:
    with pytest.raises(UnsafePath, match=reason):
        normal_path(path)
    tenancy = Tenancy("web", source_paths=("apps/web/**",))
    [violation] = path_violations(tenancy, path)
    assert violation.startswith(f"path {path!r} is refused: ")


def test_a_team_path_with_a_parent_segment_is_refused_in_tether_yaml() -> None:
    text = (
        "environments: [dev]\nteams:\n  - name: web\n    paths:\n      - apps/web/**\n"
        "      - apps/web/../../infra/**\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse(text, "tether.yaml")
    assert str(caught.value) == (
        "tether.yaml:6: teams[0].paths[1]: 'apps/web/../../infra/**' is refused: it has a '..' "
        "segment; name the directory from the repository root instead"
    )


def test_normal_form() -> None:
    assert normal_path("./apps//web/") == "apps/web"
    assert normal_path("") == normal_path("./") == "."


def test_the_confined_copy_holds_only_what_the_limits_allow(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, "apps/web/cm.yaml", configmap("web"))
    write(root, "apps/api/shared/cm.yaml", configmap("shared"))
    write(root, "apps/api/base/cm.yaml", configmap("api"))
    write(root, "platform/secret.yaml", configmap("platform"))
    write(root, ".git/config", "[core]\n")
    write(tmp_path, "outside.yaml", configmap("outside"))
    os.symlink("../../platform/secret.yaml", root / "apps/web/platform.yaml")
    os.symlink(tmp_path / "outside.yaml", root / "apps/web/outside.yaml")
    os.symlink("../api/shared", root / "apps/web/shared", target_is_directory=True)
    os.symlink("../../platform", root / "apps/web/vendor", target_is_directory=True)
    os.mkfifo(root / "apps/web/pipe.yaml")

    tree = Tree.open(root, WEB)
    for copied in (tree.root, tree.root / "apps/web"):
        with confined_view(tree, [copied]) as view:
            files = sorted(
                (Path(directory) / name).relative_to(view).as_posix()
                for directory, directories, names in os.walk(view)
                for name in names + [d for d in directories if (Path(directory) / d).is_symlink()]
            )
            assert files == ["apps/api/shared/cm.yaml", "apps/web/cm.yaml", "apps/web/shared"]
            shared = view / "apps/web/shared"
            assert shared.is_symlink() and shared.resolve() == view / "apps/api/shared"
            assert (shared / "cm.yaml").read_text() == configmap("shared")


@pytest.fixture
def kustomize() -> Path:
    binary = cached_kustomize()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"kustomize binary not found at {binary}; run ./scripts/setup")
    return binary


def exponential_kustomization(root: Path, top: str, levels: int) -> None:
    """``top`` includes two copies of the level below it, each of which includes two copies of
    the level below that, and so on: 2**levels objects, and a build time that grows faster
    still (about 2 minutes of CPU at 12 levels on the test machine), with little memory."""
    write(root, f"{top}/l0/cm.yaml", configmap("c"))
    write(root, f"{top}/l0/kustomization.yaml", "resources: [cm.yaml]\n")
    for level in range(1, levels + 1):
        below = f"../../l{level - 1}"
        for copy in ("a", "b"):
            write(
                root,
                f"{top}/l{level}/{copy}/kustomization.yaml",
                f"nameSuffix: -{copy}\nresources: [{below}]\n",
            )
        write(root, f"{top}/l{level}/kustomization.yaml", "resources: [a, b]\n")


def test_a_kustomization_that_runs_too_long_is_stopped(tmp_path: Path, kustomize: Path) -> None:
    root = tmp_path / "repo"
    exponential_kustomization(root, "apps/web/first", 12)
    exponential_kustomization(root, "apps/web/second", 12)
    for name in ("first", "second"):
        write(root, f"apps/web/{name}/kustomization.yaml", "resources: [l12]\n")
    settings = RenderSettings(kustomize=kustomize, timeout=3, read_limits=WEB)

    with pytest.raises(RenderError) as caught:
        render(root, "apps/web", settings)

    message = str(caught.value)
    assert (
        "apps/web/first/kustomization.yaml: kustomize build did not finish within 3s "
        "(RenderSettings.timeout, the time limit of the render) and was stopped"
    ) in message
    # The two builds share the render's budget: the second is not started at all.
    assert (
        "apps/web/second/kustomization.yaml: not built: the render's time limit of 3s "
        "(RenderSettings.timeout) was used up"
    ) in message


def test_a_kustomization_that_loops_is_refused(tmp_path: Path, kustomize: Path) -> None:
    root = tmp_path / "repo"
    write(root, "apps/web/a/kustomization.yaml", "resources: [../b]\n")
    write(root, "apps/web/b/kustomization.yaml", "resources: [../a]\n")

    with pytest.raises(RenderError) as caught:
        render(root, "apps/web/a", RenderSettings(kustomize=kustomize, timeout=60))

    assert "apps/web/a/kustomization.yaml: kustomize build failed" in str(caught.value)
    assert "cycle detected" in str(caught.value)


def test_a_tagged_reference_out_of_the_repository_is_refused_without_limits(
    tmp_path: Path, kustomize: Path
) -> None:
    """kustomize reads ``!x ../../mirror`` as the path ``../../mirror``: a directory outside the
    repository (say, another tenant's checkout in the agent's cache) is refused all the same."""
    root = tmp_path / "repo"
    write(tmp_path, "mirror/kustomization.yaml", "resources: [cm.yaml]\n")
    write(tmp_path, "mirror/cm.yaml", configmap("other-tenant"))
    write(root, "apps/web/kustomization.yaml", "resources:\n  - !x ../../../mirror\n")

    with pytest.raises(RenderError) as caught:
        render(root, "apps/web", RenderSettings(kustomize=kustomize, timeout=60))

    message = str(caught.value)
    assert "apps/web/kustomization.yaml:2: resources entry '../../../mirror' leaves the " in message
    assert "other-tenant" not in message
