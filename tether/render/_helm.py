"""Rendering a Helm chart with the real Helm engine (``helm template``), hermetically.

The chart is a directory (a chart kept in Git, checked for paths leaving the repository first)
or a packaged ``.tgz`` (fetched and verified by ``tether.source``). ``helm template`` then runs:

- with the release name and namespace given, and the values as one JSON document on standard
  input (``-f -``): values files and inline values are merged before (``merge_values``), and
  decrypted values never touch the disk;
- with ``--kube-version`` and ``--api-versions`` from the cluster (``Capabilities``), so a
  chart's ``.Capabilities`` tells the truth about the cluster it is synced to;
- with ``--include-crds`` (a chart's ``crds/`` are rendered, and staged first like any CRD) and
  ``--skip-tests`` (test hooks are never run);
- hermetically: an empty scratch directory as home and as every ``HELM_*_HOME``, no plugins, no
  repositories, no kubeconfig, a proxy that refuses every connection (so a ``lookup`` or a
  dependency download fails instead of reaching the network), no standard environment;
- under the same time and memory limits as kustomize (``RenderSettings.timeout``,
  ``RenderSettings.helm_memory``; see ``_limited.py``).

Its output is read with Tether's YAML reader and its limits; each object names the chart's
template it came from. Hooks are mapped as ``tether.core.hooks`` says (decision record 0016).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.core import Manifest, SourceLocation
from tether.core.hooks import ignored_events, is_test_hook, unsupported_events
from tether.core.kubeyaml import Document
from tether.errors import RenderError
from tether.render._limited import Cause, Stopped, Tool, run_limited
from tether.render._manifests import check_unique, from_documents
from tether.render._postrender import Patch, post_render
from tether.render._problems import Problems
from tether.render._settings import RenderSettings
from tether.render._tree import Escape, Tree
from tether.render._yaml import SyntaxProblem, load_yaml

log = logging.getLogger(__name__)

_SOURCE_COMMENT = re.compile(r"^# Source: (?P<template>\S.*)$")
_REFUSED_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, every request fails
_STDERR_LIMIT = 2000
_DEBUG_HINT = "; Use --debug flag to render out invalid YAML"  # not a flag Tether users have
_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MAX_RELEASE_NAME = 53
_MISSING_DEPENDENCIES = "missing in charts/ directory"


@dataclass(frozen=True)
class Capabilities:
    """What the target cluster serves: ``kube_version`` (``v1.33.2``) and ``api_versions``
    (``apps/v1`` and ``apps/v1/Deployment`` alike), as ``helm template`` takes them."""

    kube_version: str
    api_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetValue:
    """One ``--set``-style value given to helm as it is, in helm's own syntax
    (``image.tag=1.2``, ``a.b[0]=x,c=d``): ``flag`` is ``--set`` or ``--set-string``. Applied on
    top of every other value, as Helm does; what follows ``=`` is never shown in an error."""

    flag: str
    expression: str

    def __post_init__(self) -> None:
        if self.flag not in SET_FLAGS:
            raise ValueError(f"{self.flag}: not one of {', '.join(SET_FLAGS)}")

    @property
    def secret_parts(self) -> list[str]:
        """The values of the expression (what follows each ``=``), to keep out of errors."""
        return [part.partition("=")[2] for part in self.expression.split(",") if "=" in part]


SET_FLAGS = ("--set", "--set-string")


@dataclass(frozen=True)
class Chart:
    """One chart render: where the chart is and what to render it with.

    ``path`` is a chart directory or a packaged ``.tgz``; ``label`` names it in errors (its path
    in the repository, or its URL). ``tree``, when the chart is a directory of a repository, is
    that repository's root: no file of the chart may point outside it. ``values`` is the merged
    values (see ``merge_values``). ``patches`` are applied to the output by kustomize
    (``_postrender.py``). ``capabilities`` None leaves Helm's defaults (its own
    Kubernetes version), which is only right for a render that is not synced anywhere.
    """

    path: Path
    label: str
    release: str
    namespace: str
    values: Mapping[str, Any] = field(default_factory=dict)
    capabilities: Capabilities | None = None
    include_crds: bool = True
    tree: Path | None = None
    patches: tuple[Patch, ...] = ()
    set_values: tuple[SetValue, ...] = ()


class _HelmFailed(Exception):
    """helm could not be run or refused the chart; ``str()`` says why."""


def render_chart(chart: Chart, settings: RenderSettings) -> list[Manifest]:
    """The objects ``helm template`` renders from ``chart``, each pointing at its template.

    Raises ``RenderError`` naming the chart and every problem: a file of the chart leaving the
    repository, a template that fails (Helm names the template and line), a ``required`` value
    missing, output that is not objects, a hook Tether does not run.
    """
    problems = Problems()
    _check_release(chart, problems)
    if chart.tree is not None:
        _check_confined(Tree.open(chart.tree, settings.read_limits), chart, problems)
    if settings.helm is None:
        problems.add(
            f"{chart.label}: this is a Helm chart, but no helm binary is configured "
            "(RenderSettings.helm)"
        )
    problems.raise_if_any(f"chart {chart.label}")
    assert settings.helm is not None
    try:
        output = _run(settings.helm, chart, settings)
    except _HelmFailed as exc:
        problems.add(str(exc))
        problems.raise_if_any(f"chart {chart.label}")
        raise AssertionError("unreachable") from exc
    manifests = _manifests(output, chart, settings, problems)
    if not len(problems):
        manifests = post_render(manifests, chart.patches, chart.label, settings, problems)
    manifests = _map_hooks(manifests, problems)
    check_unique(manifests, problems)
    problems.raise_if_any(f"chart {chart.label}")
    return manifests


def merge_values(layers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``layers`` merged the way Helm merges several ``-f`` files: mappings key by key, deeply;
    anything else (a list, a scalar, a null) replaced by the later layer. A null left in the
    result removes that key from the chart's own defaults, as in Helm."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer)
    return merged


def _merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overlay.items():
        previous = result.get(key)
        if isinstance(previous, Mapping) and isinstance(value, Mapping):
            result[key] = _merge(previous, value)
        else:
            result[key] = value
    return result


def _check_release(chart: Chart, problems: Problems) -> None:
    name = chart.release
    if len(name) > _MAX_RELEASE_NAME or not _RELEASE_NAME.match(name):
        problems.add(
            f"release name {name!r} is not valid for Helm: at most {_MAX_RELEASE_NAME} lowercase "
            "letters, digits and '-', starting and ending with a letter or digit"
        )


def _check_confined(tree: Tree, chart: Chart, problems: Problems) -> None:
    """Every file of a chart directory stays in the repository, and within the read limits of
    the tree when it has some (Helm follows symlinks)."""
    try:
        start = tree.confine(chart.path)
    except Escape as exc:
        if exc.limits:
            problems.add(f"{chart.label}: the chart is {exc.where()}; {exc.advice()}")
        else:
            problems.add(f"{chart.label}: leaves the repository (it points to {exc})")
        return
    if not start.is_dir():
        return  # a packaged chart inside the repository: Helm reads only the archive
    for directory, subdirectories, files in os.walk(start):
        for name in [*subdirectories, *files]:
            path = Path(directory) / name
            if not path.is_symlink():
                continue
            label = f"{chart.label}/{path.relative_to(start).as_posix()}"
            try:
                tree.confine(path)
            except Escape as exc:
                problems.add(f"{label}: symlink points {exc.where()}; {exc.advice()}")


def _arguments(chart: Chart) -> list[str]:
    arguments = [
        "template",
        chart.release,
        str(chart.path),
        "--namespace",
        chart.namespace,
        "--skip-tests",
        "--values",
        "-",
    ]
    for value in chart.set_values:
        arguments += [value.flag, value.expression]
    if chart.include_crds:
        arguments.append("--include-crds")
    if chart.capabilities is not None:
        arguments += ["--kube-version", chart.capabilities.kube_version]
        for api_version in chart.capabilities.api_versions:
            arguments += ["--api-versions", api_version]
    return arguments


def _environment(scratch: str) -> dict[str, str]:
    """Nothing of Tether's environment (credentials, kubeconfig) and nowhere to find plugins,
    repositories or registries; every network connection goes to a proxy that refuses it."""
    home = Path(scratch)
    for name in ("cache", "config", "data", "plugins"):
        (home / name).mkdir()
    return {
        "HOME": scratch,
        "TMPDIR": scratch,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_PLUGINS": str(home / "plugins"),
        "HELM_REGISTRY_CONFIG": str(home / "config" / "registry.json"),
        "HELM_REPOSITORY_CONFIG": str(home / "config" / "repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(home / "cache" / "repository"),
        "KUBECONFIG": str(home / "config" / "no-kubeconfig"),
        "HTTP_PROXY": _REFUSED_PROXY,
        "HTTPS_PROXY": _REFUSED_PROXY,
        "NO_PROXY": "",
        "PATH": os.defpath,
        "LANG": "C",
    }


def _run(binary: Path, chart: Chart, settings: RenderSettings) -> str:
    """``helm template``'s standard output; ``_HelmFailed`` with its error."""
    tool = Tool("helm", binary, settings.helm_memory)
    with tempfile.TemporaryDirectory(prefix="tether-helm-") as scratch:
        try:
            finished = run_limited(
                tool,
                _arguments(chart),
                timeout=settings.timeout,
                cwd=scratch,
                environment=_environment(scratch),
                tidy=lambda stderr: _tidy(stderr, chart, scratch),
                stdin=json.dumps(chart.values).encode(),
            )
        except Stopped as exc:
            raise _HelmFailed(_stopped(exc, binary, settings)) from exc
    if finished.returncode != 0:
        said = finished.stderr or "no output"
        if _MISSING_DEPENDENCIES in said:
            said += (
                "; Tether downloads nothing at render time: vendor every dependency of "
                "Chart.yaml in the chart's charts/ directory and commit it (even one its "
                "condition disables: Helm checks them all; a chart's own .gitignore may hide "
                "charts/), or remove the ones not used from Chart.yaml"
            )
        raise _HelmFailed(f"helm template failed (exit {finished.returncode}): {said}")
    if finished.stderr:
        log.warning("helm template of %s: %s", chart.label, _tidy(finished.stderr, chart, ""))
    return finished.stdout


def _stopped(stopped: Stopped, binary: Path, settings: RenderSettings) -> str:
    """What to tell about a ``helm template`` run stopped by a limit, or not run at all."""
    if stopped.cause is Cause.TIME:
        return (
            f"helm template did not finish within {settings.timeout:g}s (RenderSettings.timeout); "
            "nothing was applied: look for a runaway loop in the chart's templates"
        )
    if stopped.cause is Cause.MEMORY:
        return (
            f"helm template ran out of its memory limit of {settings.helm_memory // 1024**2} MiB "
            "(RenderSettings.helm_memory); nothing was applied"
        )
    return f"helm binary {binary} cannot be run ({stopped.reason}); check RenderSettings.helm"


def _tidy(stderr: str, chart: Chart, scratch: str) -> str:
    """Helm's error on one line, with local paths replaced by the chart's label, and, for a
    chart directory in a repository, Helm's ``name/templates/…`` positions made repository
    paths (``charts/shop/templates/…``), so the error points at the file to fix."""
    text = stderr.replace(str(chart.path), chart.label).replace(scratch, "<scratch>")
    for value in chart.set_values:  # helm may quote a --set expression back: never its values
        text = text.replace(value.expression, f"{value.expression.split('=')[0]}=…")
        for part in sorted(value.secret_parts, key=len, reverse=True):
            if len(part) >= 3:
                text = text.replace(part, "…")
    if chart.tree is not None:
        text = text.replace(f"{chart.tree}/", "")
        name = _chart_name(chart.path)
        if name and name != chart.label:
            text = re.sub(rf"(?<=[( ]){re.escape(name)}/", f"{chart.label}/", text)
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    text = text.removeprefix("Error: ").replace(_DEBUG_HINT, "")
    if len(text) > _STDERR_LIMIT:
        text = text[:_STDERR_LIMIT] + " ..."
    return text


def _chart_name(directory: Path) -> str:
    """The ``name`` in a chart directory's Chart.yaml ("" when it cannot be read)."""
    try:
        documents = load_yaml((directory / "Chart.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxProblem):
        return ""
    data = documents[0].data if documents else None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else ""


def _manifests(
    output: str, chart: Chart, settings: RenderSettings, problems: Problems
) -> list[Manifest]:
    """The objects of helm's output, each located at ``<chart label>/<template>``."""
    try:
        documents = load_yaml(output, settings.yaml_limits)
    except SyntaxProblem as exc:
        problems.add(exc.at(f"{chart.label} (helm template output)"))
        return []
    templates = _template_lines(output)
    manifests: list[Manifest] = []
    for document in documents:
        label = _template_label(chart, templates, document)
        for manifest in from_documents([document], label, problems):
            manifests.append(Manifest(manifest.body, SourceLocation(label)))
    return manifests


def _template_lines(output: str) -> list[tuple[int, str]]:
    """``(line, template)`` of every ``# Source:`` comment helm writes above a document."""
    found = []
    for number, line in enumerate(output.splitlines(), start=1):
        match = _SOURCE_COMMENT.match(line)
        if match:
            found.append((number, match["template"].strip()))
    return found


def _template_label(chart: Chart, templates: list[tuple[int, str]], document: Document) -> str:
    template = ""
    for line, name in templates:
        if line > document.line:
            break
        template = name
    if not template:
        return f"{chart.label} (helm template output)"
    within = template.split("/", 1)[1] if "/" in template else template
    return f"{chart.label}/{within}"


def _map_hooks(manifests: list[Manifest], problems: Problems) -> list[Manifest]:
    """Test hooks dropped, hooks on delete or rollback only refused (decision record 0016)."""
    kept = []
    for manifest in manifests:
        if is_test_hook(manifest.body):
            continue
        refused = unsupported_events(manifest.body)
        if refused:
            problems.add(
                f"{manifest.source}: {manifest.ref} is a Helm hook on {', '.join(refused)}, which "
                "Tether does not run (a sync applies, it never deletes or rolls back a release; "
                "see docs/helm.md): remove the hook or give it a pre-/post-install or -upgrade "
                "event"
            )
            continue
        ignored = ignored_events(manifest.body)
        if ignored:
            log.info(
                "%s: %s: hook events %s are not run by Tether",
                manifest.source,
                manifest.ref,
                ", ".join(ignored),
            )
        kept.append(manifest)
    return kept


def read_values(root: Path | None, path: str, settings: RenderSettings) -> dict[str, Any]:
    """The values file ``path``: inside the repository tree ``root`` (confined to it), or a
    local file when ``root`` is None. Read with Tether's YAML reader and its limits; an empty
    file is no values. ``RenderError`` naming the file (and line) when it cannot be used."""
    if root is not None:
        real, label = Tree.open(root, settings.read_limits).locate(path)
    else:
        real, label = Path(path), path
    try:
        text = real.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError(f"values file {label}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise RenderError(f"values file {label}: cannot be read: {exc.strerror or exc}") from None
    return parse_values(text, f"values file {label}", settings)


def parse_values(
    text: str, label: str, settings: RenderSettings, *, secret: bool = False
) -> dict[str, Any]:
    """A values document (``text``), read with Tether's YAML reader and its limits; an empty
    text is no values. ``RenderError`` naming ``label`` (and the line) when it cannot be used;
    with ``secret`` the reader's own message (which may quote the text) is left out."""
    problems = Problems()
    try:
        documents = [d for d in load_yaml(text, settings.yaml_limits) if d.data is not None]
    except SyntaxProblem as exc:
        if secret:
            raise RenderError(f"{label}: not valid YAML (line {exc.line})") from None
        raise RenderError(exc.at(label)) from None
    if len(documents) > 1:
        problems.add(f"{label}:{documents[1].line}: values are one YAML document")
    elif documents and not isinstance(documents[0].data, dict):
        problems.add(f"{label}:{documents[0].line}: values must be a mapping of names to values")
    problems.raise_if_any(label)
    return dict(documents[0].data) if documents else {}
