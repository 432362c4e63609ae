"""``tether install --export``: plain YAML a reviewer can read and kubectl applies, with no YAML
anchors or aliases even though the CRDs share parts of their schemas."""

from __future__ import annotations

import yaml

from tests.conftest import Cli, Kubectl
from tether.agent import install
from tether.core import kubeyaml


def anchors_and_aliases(text: str) -> list[str]:
    """Every anchor (``&name``) and alias (``*name``) in ``text``, read by a YAML parser."""
    found = []
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            found.append(f"*{event.anchor}")
        elif getattr(event, "anchor", None):
            found.append(f"&{event.anchor}")
    return found


def test_the_export_has_no_anchors_and_reads_back_as_the_manifests(cli: Cli) -> None:
    objects = install.manifests()
    # The manifests do share objects: PyYAML's own dumper would write anchors for them.
    assert anchors_and_aliases(yaml.safe_dump_all(objects, sort_keys=False))
    code, out, err = cli("install", "--export")
    assert code == 0, err
    assert anchors_and_aliases(out) == []
    assert [document.data for document in kubeyaml.load_all(out)] == objects


def test_the_export_applies(cli: Cli, kubectl: Kubectl) -> None:
    code, out, err = cli("install", "--export")
    assert code == 0, err
    # Namespaced objects need their namespace to exist even for a dry run; other tests install
    # the agent's namespace for real too.
    namespace = next(o for o in install.manifests() if o["kind"] == "Namespace")
    kubectl("apply", "-f", "-", stdin=kubeyaml.dump_all([namespace]))
    applied = kubectl("apply", "--dry-run=server", "-f", "-", stdin=out, check=False)
    assert applied.returncode == 0, applied.stderr
    kinds = {o["kind"] for o in install.manifests()}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole"} <= kinds
    assert applied.stdout.count("(server dry run)") == len(install.manifests())
