"""Chart Apps in ``tether lint``: an App with ``spec.chart`` rendered offline with the real helm.

    chart_apps(unit) -> [App manifests with spec.chart]
    lint_chart(app, unit, repository, settings) -> ChartLint(unit or None, findings)
    chart_directories(repository) -> {directories holding a Chart.yaml}

An App found among the objects an overlay or a cluster directory renders, whose ``spec.chart``
is set, names a chart kept in Git (``spec.path``). Lint reads only the repository, so:

- the chart must be a directory (or packaged ``.tgz``) of this repository; otherwise (the App's
  GitSource is another repository, or the chart comes from a Helm repository) the App is
  reported as ``chart-skipped``, saying why, and nothing is fetched;
- values files are read from the repository; SOPS-encrypted values stay encrypted (lint has no
  keys): their ``ENC[…]`` strings are rendered as they are and never called cleartext;
  ``valuesFrom`` ConfigMaps and Secrets live in the cluster and are not read (a note says so);
- when the chart has a ``values.schema.json``, the merged values (the chart's defaults, the
  files, the App's inline values) are checked against it first; each problem names the values
  file and line that set the failing key (``chart-values-invalid``) and the chart is not
  rendered (Helm would refuse the values);
- the render runs with the Kubernetes version lint validates against and, as API versions, the
  ones the repository's CustomResourceDefinitions serve, so ``.Capabilities`` sees them.

The rendered objects then go through the same checks as an overlay's (names, images of the
App's environment, namespaces, schemas), and a rendered ``Secret`` whose value is set in
cleartext in the repository (a values file, the App's inline values or the template itself) is
``secret-cleartext`` at the line that holds it. Values never appear in a finding.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

import jsonschema
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tether.core import Manifest, kubeyaml
from tether.errors import RenderError
from tether.governance.repository import Repository
from tether.governance.settings import LintSettings
from tether.policy.findings import Finding, field_path
from tether.policy.layout import Unit
from tether.policy.rules import RULES
from tether.policy.secrets import literal_value
from tether.render import (
    Capabilities,
    Chart,
    Patch,
    RenderSettings,
    merge_values,
    read_patch,
    read_values,
    render_chart,
)

TETHER_GROUP = "tether.dev"
CHART_FILE = "Chart.yaml"
SCHEMA_FILE = "values.schema.json"
_NETWORK_SOURCES = ("HelmSource", "OCISource")
_IMAGE_RULES = ("image-latest", "image-unpinned")
_KUBE_VERSION = re.compile(r"^v?[1-9]\d*\.\d+\.\d+")
_SOPS_VALUE = re.compile(r"^ENC\[[A-Za-z0-9_]+,.*\]$", re.DOTALL)

Key = tuple[str | int, ...]


@dataclass(frozen=True)
class ValuesLayer:
    """One source of values, in merge order: where it is (file and the line of each key)."""

    path: str
    values: Mapping[str, Any]
    lines: Mapping[Key, int] = field(default_factory=dict)
    line: int = 0  # where the layer starts (the App's line for inline values)

    def line_of(self, key: Key) -> int:
        """The line of ``key`` or of its deepest parent the layer sets."""
        for end in range(len(key), 0, -1):
            if key[:end] in self.lines:
                return self.lines[key[:end]]
        return self.line

    def defines(self, key: Key) -> bool:
        node: Any = self.values
        for part in key:
            present = (isinstance(node, Mapping) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)
            )
            if not present:
                return False
            node = node[part]
        return True


@dataclass
class ChartLint:
    """What linting one chart App gave: its rendered objects (None when it did not render)
    and the findings about it."""

    unit: Unit | None = None
    findings: list[Finding] = field(default_factory=list)
    layers: list[ValuesLayer] = field(default_factory=list)

    def refine(self, finding: Finding, repository: Repository) -> Finding:
        """An image finding about a rendered object pointed at the values line that set the
        image, when a values file (or the App) sets it whole."""
        if finding.rule not in _IMAGE_RULES or not finding.subject:
            return finding
        where = _written_at(finding.subject, self.layers, "", repository)
        return finding.at(*where) if where is not None else finding


def is_chart_app(manifest: Manifest) -> bool:
    """An App of Tether whose ``spec.chart`` is set."""
    group = manifest.api_version.partition("/")[0]
    spec = manifest.body.get("spec")
    return (
        manifest.kind == "App"
        and group == TETHER_GROUP
        and isinstance(spec, dict)
        and isinstance(spec.get("chart"), dict)
    )


def chart_apps(unit: Unit) -> list[Manifest]:
    return [manifest for manifest in unit.manifests if is_chart_app(manifest)]


def chart_directories(repository: Repository) -> set[str]:
    """Every directory of the repository holding a ``Chart.yaml`` (a chart's own files are not
    manifests: its templates are not objects until helm renders them)."""
    return {
        str(PurePosixPath(path).parent)
        for path in repository.files
        if PurePosixPath(path).name == CHART_FILE
    }


def lint_chart(
    app: Manifest, unit: Unit, repository: Repository, settings: LintSettings
) -> ChartLint:
    """Render the chart of ``app`` (found in ``unit``) offline and check its values."""
    spec: dict[str, Any] = app.body["spec"]
    chart: dict[str, Any] = spec["chart"]
    result = ChartLint()
    skipped = _why_skipped(spec, chart, repository)
    if skipped:
        result.findings.append(_finding("chart-skipped", app, f"{app.ref}: {skipped}"))
        return result
    if chart.get("valuesFrom"):
        result.findings.append(
            _finding(
                "chart-skipped",
                app,
                f"{app.ref}: spec.chart.valuesFrom names ConfigMaps and Secrets of the cluster, "
                "which lint does not read: the chart is rendered without them",
            )
        )
    chart_path = str(PurePosixPath(spec["path"].strip("/")))
    render_settings = RenderSettings(
        kustomize=settings.kustomize, helm=settings.helm, timeout=settings.render_timeout
    )
    try:
        layers = _layers(app, chart_path, chart, repository, render_settings)
        patches = [
            read_patch(repository.root, patch, render_settings)
            for patch in chart.get("postRenderPatches") or ()
        ]
    except RenderError as error:
        result.findings.append(_finding("render-failed", app, f"{app.ref}: {error}"))
        return result
    schema_findings = _schema_findings(app, chart_path, layers, repository)
    if schema_findings:
        result.findings += schema_findings
        return result
    chart_of = _RenderedChart(app, chart_path, chart, tuple(patches))
    try:
        manifests = chart_of.render(layers, unit, repository, settings, render_settings)
    except RenderError as error:
        result.findings.append(_finding("render-failed", app, f"{app.ref}: {error}"))
        return result
    result.unit = Unit(chart_path, unit.place, tuple(manifests))
    result.layers = layers
    result.findings += _cleartext_secrets(manifests, layers, repository)
    return result


@dataclass(frozen=True)
class _RenderedChart:
    """How one chart App is rendered: its chart, its release and namespace, its patches."""

    app: Manifest
    path: str
    chart: dict[str, Any]
    patches: tuple[Patch, ...]

    def render(
        self,
        layers: list[ValuesLayer],
        unit: Unit,
        repository: Repository,
        settings: LintSettings,
        render_settings: RenderSettings,
    ) -> list[Manifest]:
        """``helm template`` of the chart; rendered again with the kinds of its own ``crds/``
        served when there are some (Helm installs them before rendering the templates)."""
        spec = self.app.body["spec"]
        given = [layer.values for layer in layers[1:]]  # helm applies the chart's defaults
        namespace = (spec.get("destination") or {}).get("namespace") or self.app.ref.namespace
        capabilities = Capabilities(_kube_version(settings), _crd_api_versions(unit.manifests))
        chart = Chart(
            repository.root / self.path,
            self.path,
            str(self.chart.get("releaseName") or self.app.ref.name),
            str(namespace or "default"),
            _without_sops(merge_values(given)),
            capabilities,
            True,
            repository.root,
            self.patches,
        )
        manifests = render_chart(chart, render_settings)
        own = [m for m in manifests if "/crds/" in f"/{m.source.path}"]
        served = set(_crd_api_versions(own)) - set(capabilities.api_versions)
        if not served:
            return manifests
        widened = replace(capabilities, api_versions=(*capabilities.api_versions, *sorted(served)))
        return render_chart(replace(chart, capabilities=widened), render_settings)


def _why_skipped(spec: dict[str, Any], chart: dict[str, Any], repository: Repository) -> str:
    source_kind = str((spec.get("sourceRef") or {}).get("kind") or "")
    if source_kind in _NETWORK_SOURCES or chart.get("name") or chart.get("repository"):
        return (
            "the chart comes from a Helm repository or an OCI registry, and lint does not use "
            "the network: not rendered (render it with `tether diff --repo … --chart …`)"
        )
    path = str(spec.get("path") or "").strip("/")
    target = repository.root / path
    if not path or not repository.inside(path) or not (target.is_dir() or target.is_file()):
        return (
            f"spec.path {path!r} is not in this repository (the App's GitSource may be another "
            "repository): the chart is not rendered"
        )
    if target.is_dir() and not (target / CHART_FILE).is_file():
        return f"spec.path {path!r} holds no {CHART_FILE}: it is not a chart"
    return ""


def _finding(
    rule_id: str,
    app: Manifest,
    message: str,
    *,
    path: str = "",
    line: int = -1,
    subject: str = "",
    key: str = "",
) -> Finding:
    rule = RULES[rule_id]
    return Finding(
        rule.id,
        path or app.source.path,
        message,
        app.source.line if line < 0 else line,
        rule.severity,
        rule.hint,
        subject=subject or str(app.ref),
        field=key,
    )


# -- values -------------------------------------------------------------------------------------


def _layers(
    app: Manifest,
    chart_path: str,
    chart: dict[str, Any],
    repository: Repository,
    settings: RenderSettings,
) -> list[ValuesLayer]:
    """The chart's defaults, each values file, then the App's inline values."""
    layers: list[ValuesLayer] = []
    defaults = f"{chart_path}/values.yaml"
    files = [defaults] if (repository.root / defaults).is_file() else []
    if not files:
        layers.append(ValuesLayer(defaults, {}))
    for values_file in [*files, *(str(f) for f in chart.get("valuesFiles") or ())]:
        values = read_values(repository.root, values_file, settings)
        layers.append(
            ValuesLayer(values_file, values, _key_lines(repository.read(values_file) or ""), 1)
        )
    inline = chart.get("values") or {}
    if isinstance(inline, dict):
        layers.append(ValuesLayer(app.source.path, inline, {}, app.source.line))
    return layers


def _key_lines(text: str) -> dict[Key, int]:
    """The line of every key of a values file (``("image", "tag") -> 7``)."""
    try:
        nodes = kubeyaml.compose_all(text)
    except kubeyaml.YamlProblem:
        return {}
    found: dict[Key, int] = {}
    for node in nodes:
        if node is not None:
            _walk_lines(node, (), found)
    return found


def _walk_lines(node: Node, key: Key, found: dict[Key, int]) -> None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                child = (*key, str(key_node.value))
                found.setdefault(child, key_node.start_mark.line + 1)
                _walk_lines(value_node, child, found)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*key, index)
            found.setdefault(child, item.start_mark.line + 1)
            _walk_lines(item, child, found)


def _without_sops(values: dict[str, Any]) -> dict[str, Any]:
    """Values without the ``sops`` metadata of an encrypted file (it is not a value)."""
    return {key: value for key, value in values.items() if key != "sops"}


def _schema_findings(
    app: Manifest, chart_path: str, layers: list[ValuesLayer], repository: Repository
) -> list[Finding]:
    schema_path = f"{chart_path}/{SCHEMA_FILE}"
    if not (repository.root / schema_path).is_file():
        return []
    text = repository.read(schema_path)
    try:
        schema = json.loads(text or "")
        validator_class = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft7Validator
        )
        validator_class.check_schema(schema)
    except (ValueError, jsonschema.SchemaError) as refused:
        reason = refused.message if isinstance(refused, jsonschema.SchemaError) else str(refused)
        return [
            _finding(
                "render-failed",
                app,
                f"{schema_path}: not a usable JSON schema: {reason[:300]}",
                path=schema_path,
                line=0,
            )
        ]
    merged = _without_sops(merge_values([layer.values for layer in layers]))
    findings = []
    for error in validator_class(schema).iter_errors(merged):
        if isinstance(error.instance, str) and _SOPS_VALUE.match(error.instance):
            continue  # encrypted in Git: lint cannot see the value
        key: Key = tuple(error.absolute_path)
        layer = _setting_layer(layers, key)
        dotted = field_path(key) or "(the values)"
        findings.append(
            _finding(
                "chart-values-invalid",
                app,
                f"value {dotted}: {_problem(error)} (the chart's {schema_path})",
                path=layer.path,
                line=layer.line_of(key),
                subject=f"{chart_path}:{dotted}",
                key=dotted,
            )
        )
    return findings


def _setting_layer(layers: list[ValuesLayer], key: Key) -> ValuesLayer:
    """The last layer that sets ``key`` (for a missing key: its parent), else the App's."""
    for layer in reversed(layers):
        if key and layer.defines(key):
            return layer
    return layers[-1]


def _problem(error: jsonschema.ValidationError) -> str:
    """What is wrong, without the value itself (it may be a secret)."""
    expected = error.validator_value
    if error.validator == "type":
        return (
            f"must be of type {' or '.join(expected) if isinstance(expected, list) else expected}"
        )
    if error.validator in ("required", "additionalProperties", "dependentRequired"):
        return error.message
    if error.validator in ("enum", "const"):
        return (
            f"must be {'one of ' if error.validator == 'enum' else ''}{json.dumps(expected)[:200]}"
        )
    return f"does not satisfy the schema's {error.validator!r} ({json.dumps(expected, default=str)[:200]})"


# -- rendered output ----------------------------------------------------------------------------


def _kube_version(settings: LintSettings) -> str:
    """The version lint validates against, when it is a real Kubernetes version (else helm's
    own default)."""
    version = settings.kubernetes_version
    return version if _KUBE_VERSION.match(version) else ""


def _crd_api_versions(manifests: Iterable[Manifest]) -> tuple[str, ...]:
    """``group/version`` and ``group/version/Kind`` served by the CRDs rendered beside the App."""
    served: set[str] = set()
    for manifest in manifests:
        if not manifest.is_crd:
            continue
        spec = manifest.body.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            if isinstance(version, dict) and version.get("served") and group and kind:
                served |= {
                    f"{group}/{version.get('name')}",
                    f"{group}/{version.get('name')}/{kind}",
                }
    return tuple(sorted(served))


def _secret_values(manifest: Manifest) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of a rendered Secret's ``data`` (decoded) and ``stringData``."""
    for section in ("data", "stringData"):
        entries = manifest.body.get(section)
        if not isinstance(entries, dict):
            continue
        for key, raw in entries.items():
            if not isinstance(raw, str):
                continue
            value = raw
            if section == "data":
                try:
                    value = base64.b64decode(raw, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    continue
            yield str(key), value


def _cleartext_secrets(
    manifests: list[Manifest], layers: list[ValuesLayer], repository: Repository
) -> list[Finding]:
    """A rendered Secret value written in cleartext in the repository, at the line holding it;
    a value the chart generates (``randAlphaNum``) or an encrypted one is not reported."""
    rule = RULES["secret-cleartext"]
    findings = []
    for manifest in manifests:
        if manifest.kind != "Secret" or manifest.api_version != "v1":
            continue
        for key, value in _secret_values(manifest):
            if not literal_value(value) or _SOPS_VALUE.match(value.strip()):
                continue
            where = _written_at(value, layers, manifest.source.path, repository)
            if where is None:
                continue
            path, line = where
            findings.append(
                Finding(
                    rule.id,
                    path,
                    f"{manifest.ref} (rendered from {manifest.source.path}) key {key!r} holds a "
                    f"value set in cleartext here; anyone who can read the repository can read it",
                    line,
                    rule.severity,
                    "encrypt the values file with `sops --encrypt --in-place <file>` (the chart "
                    "gets the value decrypted at sync) and rotate the secret: it is in Git history",
                    subject=f"{manifest.ref}:{key}",
                )
            )
    return findings


def _written_at(
    value: str, layers: list[ValuesLayer], template: str, repository: Repository
) -> tuple[str, int] | None:
    for layer in reversed(layers):
        for key, found in _scalars(layer.values, ()):
            if found == value:
                return layer.path, layer.line_of(key)
    if not template or not (repository.root / template).is_file():
        return None
    text = repository.read(template)
    if text and value in text:
        number = next((n for n, line in enumerate(text.splitlines(), start=1) if value in line), 0)
        return template, number
    return None


def _scalars(node: Any, key: Key) -> Iterator[tuple[Key, str]]:
    if isinstance(node, Mapping):
        for name, child in node.items():
            yield from _scalars(child, (*key, str(name)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _scalars(child, (*key, index))
    elif isinstance(node, str):
        yield key, node
