"""Building a kustomization with the kustomize binary, after checking what it would read.

Before kustomize runs, every kustomization reachable from the one being built is read and each
path it names (resources, bases, components, patches, generator files, …) is checked:

- a remote reference (a URL, ``git@host:…``, ``github.com/…``, ``?ref=…``) is refused: a render
  must depend only on the commit being deployed, so remote bases are vendored into the repository;
- a path that leaves the repository, directly or through a symlink, is refused;
- a path that does not exist is reported with its file and line (kustomize's own message would
  name neither);
- Helm chart inflation is refused (Tether does not run Helm inside kustomize).

kustomize then runs with plugins off (no ``--enable-exec``, ``--enable-alpha-plugins`` or
``--enable-helm``), ``--load-restrictor LoadRestrictionsRootOnly``, an empty scratch directory
as working directory and home, a minimal environment, a time limit (``RenderSettings.timeout``
is the budget of the whole render: the builds of a directory holding many kustomizations share
it, so one commit cannot hold a worker for the limit times the number of kustomizations; the
process is killed when it runs out) and a memory limit (its address space, set by ``/bin/sh``'s
``ulimit -v`` just before kustomize is executed, see ``_limited.py``: kustomize expands YAML
aliases, so one alias bomb among the resources would otherwise take all the memory of the
machine). Its output is read with the same ``YamlLimits`` as any manifest.

With ``ReadLimits`` (a team's source paths), a reference is also refused when its real target
(symlinks resolved) lies outside them, naming the kustomization, the line and the limits; and
kustomize builds a confined copy of the repository (``_view.py``), so a reference these checks
do not know about cannot reach outside the limits either.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tether.core import Manifest
from tether.core.kubeyaml import YamlLimits
from tether.render._limited import Cause, Stopped, Tool, run_limited
from tether.render._manifests import from_documents
from tether.render._problems import Problems
from tether.render._settings import RenderSettings
from tether.render._tree import Entry, Escape, Tree, join, kustomization_in
from tether.render._view import confined_view
from tether.render._yaml import SyntaxProblem, compose, load_yaml

log = logging.getLogger(__name__)

# Fields whose entries are paths; a directory named by one of the first group is itself a
# kustomization, checked in turn.
_FOLLOWED = ("resources", "bases", "components", "generators", "transformers", "validators")
_FILES = ("crds", "configurations", "patchesStrategicMerge")
_ITEMS_WITH_PATH = ("patches", "patchesJson6902", "replacements")
_GENERATORS = ("configMapGenerator", "secretGenerator")
_HELM = ("helmCharts", "helmChartInflationGenerator", "helmGlobals")
# Fields whose entries may be inline YAML instead of a path.
_INLINE_ALLOWED = ("patchesStrategicMerge", "generators", "transformers", "validators")

_REMOTE = re.compile(
    r"""
      ://                                   # any URL: https://, ssh://, git://, file://
    | ^[a-z][a-z0-9+.-]*::                  # a forced getter: git::, hg::, s3::
    | ^[\w.-]+@[\w.-]+:                     # scp-like: git@github.com:org/repo
    | ^(?:github\.com|gitlab\.com|bitbucket\.org)/
    | [?&](?:ref|version|timeout|submodules)=
    """,
    re.IGNORECASE | re.VERBOSE,
)
_HOST_LIKE = re.compile(r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+/", re.IGNORECASE)

_STDERR_LIMIT = 2000
_MISSING = re.compile(r"no such file|must resolve to a file|does not exist", re.IGNORECASE)


@dataclass(frozen=True)
class _Reference:
    field: str
    value: str
    line: int


class _BuildFailed(Exception):
    """kustomize could not be run or refused the kustomization; ``str()`` says why."""


def build(
    tree: Tree,
    entry: Entry,
    settings: RenderSettings,
    problems: Problems,
    deadline: float | None = None,
) -> list[Manifest]:
    """The manifests kustomize builds from ``entry`` (a directory holding a kustomization),
    in a confined copy of the tree (``_view.py``) when the tree has read limits, stopped at
    ``deadline`` (``time.monotonic()``; the render's time budget)."""
    assert entry.kustomization is not None
    label = join(entry.label, entry.kustomization.name)
    before = len(problems)
    directories = _check_kustomizations(tree, entry.real, problems, settings.yaml_limits)
    if len(problems) > before:
        return []
    if settings.kustomize is None:
        problems.add(
            f"{label}: this directory is built with kustomize, but no kustomize binary is "
            "configured (RenderSettings.kustomize)"
        )
        return []
    remaining = settings.timeout if deadline is None else deadline - time.monotonic()
    if remaining <= 0:
        problems.add(
            f"{label}: not built: the render's time limit of {settings.timeout:g}s "
            "(RenderSettings.timeout) was used up by the kustomizations before it"
        )
        return []
    try:
        if tree.limits is None:
            output = _run(settings.kustomize, entry.real, settings, tree.root, remaining)
        else:
            with confined_view(tree, directories) as view:
                directory = view / tree.label_of(entry.real)
                output = _run(settings.kustomize, directory, settings, view, remaining)
    except _BuildFailed as exc:
        seen = ""
        if tree.limits is not None and _MISSING.search(str(exc)):
            seen = (
                f" (kustomize sees only the kustomizations named by its resources, bases and "
                f"components, within {tree.limits.describe()})"
            )
        problems.add(f"{label}: {exc}{seen}")
        return []
    output_label = f"{label} (kustomize output)"
    try:
        documents = load_yaml(output, settings.yaml_limits)
    except SyntaxProblem as exc:
        problems.add(exc.at(output_label))
        return []
    return from_documents(documents, output_label, problems)


def _check_kustomizations(
    tree: Tree, start: Path, problems: Problems, limits: YamlLimits
) -> set[Path]:
    """Check every kustomization reachable from ``start``; their real directories."""
    pending = [start]
    visited: set[Path] = set()
    while pending:
        directory = pending.pop(0)
        if directory in visited:
            continue
        visited.add(directory)
        kustomization = kustomization_in(directory)
        if kustomization is None:
            continue  # kustomize itself reports a directory that is not a kustomization
        label = tree.label_of(directory / kustomization.name)
        try:
            real = tree.confine(kustomization)
        except Escape as exc:
            problems.add(f"{label}: symlink points {exc.where()}; {exc.advice()}")
            continue
        try:
            node = compose(real.read_text(encoding="utf-8-sig"), limits)
        except SyntaxProblem as exc:
            problems.add(exc.at(label))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.add(f"{label}: cannot be read: {exc}")
            continue
        if not isinstance(node, MappingNode):
            continue  # kustomize reports a kustomization that is not a mapping
        for reference in _references(node, label, problems):
            target = _check(tree, directory, reference, label, problems)
            if target is not None and reference.field in _FOLLOWED and target.is_dir():
                pending.append(target)
    return visited


def _references(node: MappingNode, label: str, problems: Problems) -> Iterator[_Reference]:
    """Every path-like entry of one kustomization, with its line."""
    for key_node, value_node in node.value:
        field = key_node.value if isinstance(key_node, ScalarNode) else ""
        if field in _HELM:
            problems.add(
                f"{label}:{key_node.start_mark.line + 1}: {field} is not supported: Tether runs "
                "kustomize without Helm; render the chart into the repository (helm template) "
                "and list the output under resources"
            )
        elif field in _FOLLOWED or field in _FILES:
            yield from _scalars(field, value_node)
        elif field in _ITEMS_WITH_PATH:
            for item in _mappings(value_node):
                yield from _scalars(field, _get(item, "path"))
        elif field in _GENERATORS:
            for item in _mappings(value_node):
                for file in _scalars(field, _get(item, "files")):
                    yield _Reference(field, file.value.partition("=")[2] or file.value, file.line)
                yield from _scalars(field, _get(item, "envs"))
                yield from _scalars(field, _get(item, "env"))
        elif field == "openapi" and isinstance(value_node, MappingNode):
            yield from _scalars(field, _get(value_node, "path"))


def _check(
    tree: Tree, directory: Path, reference: _Reference, label: str, problems: Problems
) -> Path | None:
    """The real path ``reference`` names, or None when it is inline or refused (a problem)."""
    where = f"{label}:{reference.line}: {reference.field} entry {reference.value!r}"
    value = reference.value.strip()
    if reference.field in _INLINE_ALLOWED and _is_inline(value):
        return None
    if _REMOTE.search(value):
        problems.add(
            f"{where} is a remote reference, and remote bases are disabled (a render must depend "
            "only on the commit being deployed): vendor the base into the repository and "
            "reference it by a relative path"
        )
        return None
    if os.path.isabs(value):
        problems.add(f"{where} is an absolute path; use a path relative to the kustomization")
        return None
    try:
        target = tree.confine(directory / value)
    except Escape as exc:
        if exc.limits:
            problems.add(f"{where} points {exc.where()}; {exc.advice()}")
        else:
            problems.add(
                f"{where} leaves the repository (it points to {exc}); only paths inside the "
                "repository can be rendered"
            )
        return None
    if not target.exists():
        hint = ""
        if _HOST_LIKE.match(value):
            hint = " (remote bases are disabled: vendor the base into the repository)"
        problems.add(f"{where} does not exist{hint}")
        return None
    return target


def _is_inline(value: str) -> bool:
    if "\n" in value:
        return True
    try:
        return isinstance(compose(value), MappingNode | SequenceNode)
    except SyntaxProblem:
        return False


def _get(node: MappingNode, key: str) -> Node | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node if isinstance(value_node, Node) else None
    return None


def _mappings(node: Node | None) -> Iterator[MappingNode]:
    if isinstance(node, SequenceNode):
        yield from (item for item in node.value if isinstance(item, MappingNode))


def _scalars(field: str, node: Node | None) -> Iterator[_Reference]:
    """The scalar entries of ``node`` (a list of them, or one), whatever their YAML tag:
    kustomize reads ``!anything ../x`` or ``123`` as a path too, so each one is checked."""
    items = node.value if isinstance(node, SequenceNode) else [node]
    for item in items:
        if isinstance(item, ScalarNode) and item.value:
            yield _Reference(field, item.value, item.start_mark.line + 1)


def _run(
    binary: Path, directory: Path, settings: RenderSettings, root: Path, timeout: float
) -> str:
    """``kustomize build directory``'s standard output, killed after ``timeout`` seconds;
    ``_BuildFailed`` with its error."""
    tool = Tool("kustomize", binary, settings.kustomize_memory)
    with tempfile.TemporaryDirectory(prefix="tether-kustomize-") as scratch:
        environment = {
            "HOME": scratch,
            "TMPDIR": scratch,
            "XDG_CONFIG_HOME": os.path.join(scratch, "config"),
            "XDG_CACHE_HOME": os.path.join(scratch, "cache"),
            "KUSTOMIZE_PLUGIN_HOME": os.path.join(scratch, "plugins"),
            "PATH": os.defpath,
            "LANG": "C",
        }
        try:
            finished = run_limited(
                tool,
                ["build", "--load-restrictor", "LoadRestrictionsRootOnly", str(directory)],
                timeout=timeout,
                cwd=scratch,
                environment=environment,
                tidy=lambda stderr: _tidy(stderr, root, scratch),
            )
        except Stopped as exc:
            raise _BuildFailed(_stopped(exc, binary, settings)) from exc
    if finished.returncode != 0:
        return_code = finished.returncode
        raise _BuildFailed(
            f"kustomize build failed (exit {return_code}): {finished.stderr or 'no output'}"
        )
    if finished.stderr:
        log.warning("kustomize build of %s: %s", directory, finished.stderr)
    return finished.stdout


def _stopped(stopped: Stopped, binary: Path, settings: RenderSettings) -> str:
    """What to tell about a ``kustomize build`` stopped by a limit, or not run at all."""
    if stopped.cause is Cause.TIME:
        return (
            f"kustomize build did not finish within {settings.timeout:g}s "
            "(RenderSettings.timeout, the time limit of the render) and was stopped; "
            "nothing was applied: look for a YAML alias bomb or a runaway generator"
        )
    if stopped.cause is Cause.MEMORY:
        return (
            f"kustomize build ran out of its memory limit of "
            f"{settings.kustomize_memory // 1024**2} MiB (RenderSettings.kustomize_memory); "
            "nothing was applied: look for a YAML alias bomb among the resources (kustomize "
            "expands aliases), or raise the limit for a very large kustomization"
        )
    return (
        f"kustomize binary {binary} cannot be run ({stopped.reason}); "
        "check RenderSettings.kustomize"
    )


def _tidy(stderr: str, root: Path, scratch: str) -> str:
    """kustomize's error on one line, with repository paths made relative to the root."""
    text = stderr.replace(f"{root}/", "").replace(str(root), ".").replace(scratch, "<scratch>")
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    text = text.removeprefix("Error: ")
    if len(text) > _STDERR_LIMIT:
        text = text[:_STDERR_LIMIT] + " ..."
    return text
