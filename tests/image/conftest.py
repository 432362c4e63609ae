"""Image fixtures: the agent image built by ``scripts/build-image`` (the cached Debian + Python
base is built first when the cache lacks it; the Tether layer always comes from this tree), and
working containers of it made and removed with buildah."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Kubectl
from tether.agent import crds

ROOT = Path(__file__).resolve().parents[2]


def buildah(*args: str) -> str:
    result = subprocess.run(["buildah", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"`buildah {' '.join(args)}` failed:\n{result.stderr[-3000:]}")
    return result.stdout


@pytest.fixture(scope="session")
def tether_crds(kubectl: Kubectl) -> None:
    """Tether's CRDs, taken over from whichever manager (tether install, other tests) set them."""
    documents = yaml.safe_dump_all(crds.ALL)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=documents)
    names = [f"crd/{crd['metadata']['name']}" for crd in crds.ALL]
    kubectl("wait", "--for=condition=Established", *names, "--timeout=60s")


@pytest.fixture(scope="session")
def agent_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of the freshly built image (what ``tether install`` names)."""
    log = tmp_path_factory.mktemp("image") / "build.log"
    with log.open("w") as stderr:
        result = subprocess.run(
            [str(ROOT / "scripts" / "build-image")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"scripts/build-image failed:\n{log.read_text()[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


def image_config(image: str) -> dict[str, Any]:
    """The image's OCI config (``config`` of its OCI image configuration) and its ID."""
    inspected = json.loads(buildah("inspect", "--type", "image", image))
    return {**inspected["OCIv1"]["config"], "ImageID": inspected["FromImageID"]}


class WorkingContainer:
    """A buildah working container of an image, with its root filesystem mountable."""

    def __init__(self, image: str) -> None:
        self.name = buildah("from", "--quiet", "--pull=never", image).strip()

    def root(self) -> Path:
        return Path(buildah("mount", self.name).strip())

    def remove(self) -> None:
        buildah("rm", self.name)


@pytest.fixture
def container(agent_image: str) -> Iterator[WorkingContainer]:
    made = WorkingContainer(agent_image)
    yield made
    made.remove()
