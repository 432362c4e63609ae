"""Analysis templates: Argo Rollouts' ``AnalysisTemplate`` (its common subset) and Tether's own.

Two dialects, one shape (docs/analysis.md lists every field):

    apiVersion: argoproj.io/v1alpha1     conditions in Argo's expr language, translated to CEL
    apiVersion: tether.dev/v1alpha1      conditions in CEL, as written

Accepted: ``spec.args[]`` (``name``, ``value``, ``valueFrom.secretKeyRef``) and ``spec.metrics[]``
with ``name``, ``interval``, ``count``, ``initialDelay``, ``successCondition``,
``failureCondition``, ``failureLimit``, ``inconclusiveLimit``, ``consecutiveErrorLimit``,
``emptyResult`` (Tether's: success | failure | inconclusive) and one provider of
``prometheus`` (``address``, ``query``, ``timeout``, ``headers``), ``web`` (``url``, ``method``,
``headers``, ``body``, ``jsonBody``, ``jsonPath``, ``timeoutSeconds``) or ``job`` (``metadata``
labels and annotations, ``spec``). ``{{args.NAME}}`` is replaced in provider fields and
conditions. Anything else is refused by name, so a template never half-works.

Reading a template checks its shape; :meth:`AnalysisTemplate.instantiate` substitutes the
arguments, translates and compiles the conditions and builds the providers: every refusal is an
``AnalysisError`` naming the template, the metric and the field, and saying what to write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.analysis import expr, job, prometheus, web
from tether.analysis.conditions import Conditions
from tether.analysis.jsonpath import JsonPath, JsonPathError
from tether.analysis.masking import ALWAYS_SECRET_HEADERS, Mask
from tether.analysis.measurement import DEFAULT_EMPTY_RESULT, EmptyResult
from tether.analysis.metric import Metric
from tether.analysis.provider import Header, Provider
from tether.analysis.verdict import DEFAULT_CONSECUTIVE_ERROR_LIMIT, Limits
from tether.core.cel import CelError
from tether.errors import AnalysisError

ARGO = "argo"
TETHER = "tether"
KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
_SPEC_FIELDS = frozenset({"args", "metrics"})
_METRIC_FIELDS = frozenset(
    {
        "name",
        "interval",
        "count",
        "initialDelay",
        "successCondition",
        "failureCondition",
        "failureLimit",
        "inconclusiveLimit",
        "consecutiveErrorLimit",
        "emptyResult",
        "provider",
    }
)
_PROVIDER_FIELDS = {
    "prometheus": frozenset({"address", "query", "timeout", "headers"}),
    "web": frozenset(
        {"url", "method", "headers", "body", "jsonBody", "jsonPath", "timeoutSeconds"}
    ),
    "job": frozenset({"metadata", "spec"}),
}
_ARGUMENT = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.-]+)\s*\}\}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_CEL_HINT = (
    "write it in CEL in a tether.dev/v1alpha1 AnalysisTemplate, for example "
    "'result[0] >= 0.95', 'size(result) == 0' or 'result.all(x, x < 0.05)'"
)


@dataclass(frozen=True)
class SecretKeyRef:
    """Where a secret argument's value lives; delivery reads it and passes it as a secret."""

    name: str
    key: str


@dataclass(frozen=True)
class Argument:
    """A declared argument: a default value, a Secret to read it from, or neither (required)."""

    name: str
    value: str | None = None
    secret_key_ref: SecretKeyRef | None = None


@dataclass(frozen=True)
class ArgValue:
    """An argument's value as the caller passes it; secret ones are masked in measurements."""

    value: str
    secret: bool = False


@dataclass(frozen=True)
class JobContext:
    """What a Job metric needs besides its template: the wired cluster, where, a run name, and
    the labels that tell whose Job it is (delivery: the App, the rollout and the step)."""

    cluster: job.JobCluster
    namespace: str
    run: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisTemplate:
    """A template read and checked, waiting for its arguments."""

    name: str
    dialect: str
    arguments: tuple[Argument, ...]
    metrics: tuple[Mapping[str, Any], ...] = field(repr=False)

    @property
    def title(self) -> str:
        return f"AnalysisTemplate {self.name}"

    def instantiate(
        self,
        args: Mapping[str, str | ArgValue] | None = None,
        *,
        jobs: JobContext | None = None,
    ) -> list[Metric]:
        """The template's metrics with ``args`` substituted (AnalysisError names what fails)."""
        values = self._argument_values(args or {})
        return [_MetricReader(self, raw, values, jobs).metric() for raw in self.metrics]

    def check(self) -> None:
        """Instantiate once with stand-in values ("0" for arguments without a default, no
        cluster for Jobs), so a bad condition, duration or path is refused before any rollout
        needs the template (AnalysisError, as ``instantiate`` would raise it)."""
        stand_ins = {
            argument.name: ArgValue("0", secret=argument.secret_key_ref is not None)
            for argument in self.arguments
            if argument.value is None
        }
        jobs = JobContext(_NoCluster(), "check", "check")
        self.instantiate(stand_ins, jobs=jobs)

    def _argument_values(self, given: Mapping[str, str | ArgValue]) -> dict[str, ArgValue]:
        declared = {argument.name: argument for argument in self.arguments}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise AnalysisError(
                f"{self.title}: arguments {unknown} are not declared in spec.args "
                f"(declared: {sorted(declared) or 'none'})"
            )
        values: dict[str, ArgValue] = {}
        for name, argument in declared.items():
            passed = given.get(name)
            if isinstance(passed, str):
                passed = ArgValue(passed)
            if passed is None and argument.value is not None:
                passed = ArgValue(argument.value)
            if passed is None:
                source = (
                    f"from Secret {argument.secret_key_ref.name} key {argument.secret_key_ref.key}"
                    if argument.secret_key_ref
                    else "and has no default value"
                )
                raise AnalysisError(f"{self.title}: argument {name!r} is needed {source}: pass it")
            secret = passed.secret or argument.secret_key_ref is not None
            values[name] = ArgValue(passed.value, secret)
        return values


class _NoCluster:
    """The JobCluster of ``check``: building a Job provider is checked, running one is not."""

    async def create_job(self, job: dict[str, Any]) -> None:
        raise AnalysisError("a checked template's Job metric cannot run")

    async def find_jobs(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        return []

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    async def job_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return []

    async def delete_job(self, namespace: str, name: str) -> None:
        return None


def is_template(document: Mapping[str, Any]) -> bool:
    """Whether ``document`` is an Argo Rollouts or Tether AnalysisTemplate (of either kind)."""
    api_version = str(document.get("apiVersion", ""))
    return document.get("kind") in KINDS and api_version.startswith(("argoproj.io/", "tether.dev/"))


def read_template(document: Mapping[str, Any], source: str = "") -> AnalysisTemplate:
    """Read an AnalysisTemplate document; AnalysisError when its shape is not accepted."""
    metadata = document.get("metadata") or {}
    name = str(metadata.get("name") or source or "(unnamed)")
    title = f"AnalysisTemplate {name}"
    api_version, kind = str(document.get("apiVersion", "")), document.get("kind")
    if kind not in KINDS:
        raise AnalysisError(f"{title}: kind {kind!r} is not an AnalysisTemplate")
    if api_version.startswith("argoproj.io/"):
        dialect = ARGO
    elif api_version.startswith("tether.dev/"):
        dialect = TETHER
    else:
        raise AnalysisError(
            f"{title}: apiVersion {api_version!r} is neither argoproj.io/v1alpha1 (conditions in "
            "Argo's expression language) nor tether.dev/v1alpha1 (conditions in CEL)"
        )
    spec = document.get("spec") or {}
    _refuse_unknown(title, "spec", spec, _SPEC_FIELDS)
    metrics = spec.get("metrics") or []
    if not isinstance(metrics, list) or not metrics:
        raise AnalysisError(f"{title}: spec.metrics must list at least one metric")
    return AnalysisTemplate(
        name, dialect, _arguments(title, spec.get("args") or []), tuple(_metrics(title, metrics))
    )


def read_metrics(metrics: list[Any], owner: str, dialect: str = TETHER) -> AnalysisTemplate:
    """Metrics written inline (in an App's delivery strategy), read as a template without
    arguments; ``owner`` names them in errors."""
    return AnalysisTemplate(owner, dialect, (), tuple(_metrics(owner, metrics)))


def _arguments(title: str, raw: list[Any]) -> tuple[Argument, ...]:
    arguments = []
    for entry in raw:
        if not isinstance(entry, dict) or not entry.get("name"):
            raise AnalysisError(f"{title}: every spec.args entry needs a name")
        value_from = entry.get("valueFrom") or {}
        ref = None
        if value_from:
            secret = value_from.get("secretKeyRef")
            if set(value_from) != {"secretKeyRef"} or not isinstance(secret, dict):
                raise AnalysisError(
                    f"{title}: argument {entry['name']!r}: valueFrom accepts secretKeyRef only "
                    "(fieldRef is read in a rollout step's args, from the target "
                    "Deployment's metadata: give the argument valueFrom.fieldRef there)"
                )
            ref = SecretKeyRef(str(secret.get("name", "")), str(secret.get("key", "")))
        value = entry.get("value")
        arguments.append(Argument(str(entry["name"]), None if value is None else str(value), ref))
    return tuple(arguments)


def _metrics(title: str, raw: list[Any]) -> list[Mapping[str, Any]]:
    seen: set[str] = set()
    for metric in raw:
        if not isinstance(metric, dict) or not metric.get("name"):
            raise AnalysisError(f"{title}: every metric needs a name")
        where = f"{title}, metric {metric['name']!r}"
        if metric["name"] in seen:
            raise AnalysisError(f"{where}: the name is used twice")
        seen.add(metric["name"])
        _refuse_unknown(where, "the metric", metric, _METRIC_FIELDS)
        provider = metric.get("provider") or {}
        kinds = list(provider)
        if len(kinds) != 1 or kinds[0] not in _PROVIDER_FIELDS:
            raise AnalysisError(
                f"{where}: provider {', '.join(kinds) or 'missing'}: Tether measures with "
                "exactly one of prometheus, web or job"
            )
        _refuse_unknown(
            where, f"provider.{kinds[0]}", provider[kinds[0]], _PROVIDER_FIELDS[kinds[0]]
        )
    return raw


# Argo fields refused on purpose, with what to do instead (seen in Argo Rollouts' own examples).
_REFUSED_ON_PURPOSE = {
    "insecure": (
        "TLS verification cannot be switched off: give the server a certificate from a CA the "
        "agent trusts, or measure it over plain http on a cluster-internal address"
    ),
}


def _refuse_unknown(where: str, part: str, mapping: Any, accepted: frozenset[str]) -> None:
    if not isinstance(mapping, dict):
        raise AnalysisError(f"{where}: {part} must be a mapping")
    unknown = sorted(set(mapping) - accepted)
    if unknown:
        hints = [
            f"{name}: {_REFUSED_ON_PURPOSE[name]}"
            for name in unknown
            if name in _REFUSED_ON_PURPOSE
        ]
        raise AnalysisError(
            f"{where}: {part} has fields Tether does not read: {', '.join(unknown)} "
            f"(accepted: {', '.join(sorted(accepted))})" + "".join(f"; {hint}" for hint in hints)
        )


class _MetricReader:
    """Builds one Metric from its raw mapping: substitution, conditions, provider, limits."""

    def __init__(
        self,
        template: AnalysisTemplate,
        raw: Mapping[str, Any],
        values: Mapping[str, ArgValue],
        jobs: JobContext | None,
    ) -> None:
        self.template, self.raw, self.values, self.jobs = template, raw, values, jobs
        self.name = str(raw["name"])
        self.where = f"{template.title}, metric {self.name!r}"
        self.secrets: set[str] = set()

    def metric(self) -> Metric:
        kind, settings = next(iter(self.raw["provider"].items()))
        builders: dict[str, Callable[[Mapping[str, Any]], Provider]] = {
            "prometheus": self._prometheus,
            "web": self._web,
            "job": self._job,
        }
        provider = builders[kind](settings)
        interval = self._duration("interval")
        count = self._count(interval)
        return Metric(
            name=self.name,
            provider=provider,
            conditions=self._conditions(kind),
            limits=Limits(
                count=count,
                failure_limit=self._integer("failureLimit", 0),
                inconclusive_limit=self._integer("inconclusiveLimit", 0),
                consecutive_error_limit=self._integer(
                    "consecutiveErrorLimit", DEFAULT_CONSECUTIVE_ERROR_LIMIT
                ),
            ),
            interval=interval or 0.0,
            initial_delay=self._duration("initialDelay") or 0.0,
            mask=Mask.of(self.secrets),
        )

    # -- substitution ---------------------------------------------------------------------

    def _text(self, value: Any, field_name: str, *, secret_allowed: bool = True) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match[1]
            argument = self.values.get(name)
            if argument is None:
                raise AnalysisError(
                    f"{self.where}: {field_name} uses {{{{args.{name}}}}}, which spec.args "
                    "does not declare"
                )
            if argument.secret:
                if not secret_allowed:
                    raise AnalysisError(
                        f"{self.where}: {field_name} uses the secret argument {name!r}; secrets "
                        "may be used in provider fields only"
                    )
                self.secrets.add(argument.value)
            return argument.value

        return _ARGUMENT.sub(replace, str(value))

    def _tree(self, value: Any, field_name: str) -> Any:
        if isinstance(value, str):
            return self._text(value, field_name)
        if isinstance(value, list):
            return [self._tree(item, field_name) for item in value]
        if isinstance(value, dict):
            return {key: self._tree(item, f"{field_name}.{key}") for key, item in value.items()}
        return value

    # -- providers ------------------------------------------------------------------------

    def _prometheus(self, settings: Mapping[str, Any]) -> Provider:
        address, query = settings.get("address"), settings.get("query")
        if not address or not query:
            raise AnalysisError(f"{self.where}: provider.prometheus needs address and query")
        return prometheus.PrometheusProvider(
            address=self._text(address, "provider.prometheus.address"),
            query=self._text(query, "provider.prometheus.query"),
            headers=self._headers(settings.get("headers"), "provider.prometheus.headers"),
            timeout=float(settings.get("timeout") or prometheus.DEFAULT_TIMEOUT),
        )

    def _web(self, settings: Mapping[str, Any]) -> Provider:
        if not settings.get("url"):
            raise AnalysisError(f"{self.where}: provider.web needs a url")
        method = str(settings.get("method") or "GET").upper()
        if method not in web.METHODS:
            raise AnalysisError(
                f"{self.where}: provider.web.method {method!r}: use one of {', '.join(web.METHODS)}"
            )
        body = self._body(settings)
        if body is not None and method == "GET":
            raise AnalysisError(
                f"{self.where}: provider.web has a body: use POST or PUT to send it"
            )
        json_path = None
        if settings.get("jsonPath"):
            try:
                json_path = JsonPath.parse(
                    self._text(settings["jsonPath"], "provider.web.jsonPath")
                )
            except JsonPathError as error:
                raise AnalysisError(f"{self.where}: provider.web.jsonPath: {error}") from None
        return web.WebProvider(
            url=self._text(settings["url"], "provider.web.url"),
            method=method,
            headers=self._headers(settings.get("headers"), "provider.web.headers"),
            body=body,
            json_path=json_path,
            timeout=float(settings.get("timeoutSeconds") or web.DEFAULT_TIMEOUT),
        )

    def _body(self, settings: Mapping[str, Any]) -> str | None:
        if settings.get("body") is not None and settings.get("jsonBody") is not None:
            raise AnalysisError(f"{self.where}: provider.web has body and jsonBody: keep one")
        if settings.get("jsonBody") is not None:
            return json.dumps(self._tree(settings["jsonBody"], "provider.web.jsonBody"))
        if settings.get("body") is not None:
            return self._text(settings["body"], "provider.web.body")
        return None

    def _job(self, settings: Mapping[str, Any]) -> Provider:
        if self.jobs is None:
            raise AnalysisError(
                f"{self.where}: a job metric needs a cluster to run its Job on, and none was "
                "given here; run it in an App's spec.delivery (the agent runs the Job as the "
                "App's identity) or measure with a prometheus or web metric (docs/analysis.md)"
            )
        if not isinstance(settings.get("spec"), dict):
            raise AnalysisError(f"{self.where}: provider.job needs a Job spec")
        metadata = settings.get("metadata") or {}
        return job.JobProvider(
            cluster=self.jobs.cluster,
            namespace=self.jobs.namespace,
            spec=self._tree(settings["spec"], "provider.job.spec"),
            run=self.jobs.run,
            metric=self.name,
            labels=self._tree(metadata.get("labels") or {}, "provider.job.metadata.labels"),
            annotations=self._tree(
                metadata.get("annotations") or {}, "provider.job.metadata.annotations"
            ),
            run_labels=dict(self.jobs.labels),
        )

    def _headers(self, raw: Any, field_name: str) -> tuple[Header, ...]:
        headers = []
        for entry in raw or []:
            if not isinstance(entry, dict) or not entry.get("key"):
                raise AnalysisError(f"{self.where}: every entry of {field_name} needs a key")
            before = set(self.secrets)
            value = self._text(entry.get("value", ""), f"{field_name}.{entry['key']}")
            secret = (
                bool(entry.get("secret"))
                or str(entry["key"]).lower() in ALWAYS_SECRET_HEADERS
                or self.secrets != before
            )
            if secret:
                self.secrets.add(value)
            headers.append(Header(str(entry["key"]), value, secret))
        return tuple(headers)

    # -- conditions, timing, limits -------------------------------------------------------

    def _conditions(self, kind: str) -> Conditions:
        success = self._condition("successCondition")
        failure = self._condition("failureCondition")
        if kind == "job" and not success and not failure:
            success = job.DEFAULT_SUCCESS_CONDITION
        empty_text = self.raw.get("emptyResult")
        try:
            empty = EmptyResult(empty_text) if empty_text else DEFAULT_EMPTY_RESULT
        except ValueError:
            raise AnalysisError(
                f"{self.where}: emptyResult {empty_text!r}: use success, failure or inconclusive"
            ) from None
        try:
            return Conditions.compile(success, failure, empty)
        except CelError as error:
            raise AnalysisError(f"{self.where}: {error}") from None

    def _condition(self, field_name: str) -> str | None:
        source = self.raw.get(field_name)
        if not source:
            return None
        text = self._text(source, field_name, secret_allowed=False).strip()
        if self.template.dialect != ARGO:
            return text
        try:
            return expr.translate(text)
        except expr.TranslationError as error:
            raise AnalysisError(
                f"{self.where}: {field_name} {text!r} is outside the part of Argo's expression "
                f"language Tether translates ({error}); {_CEL_HINT}"
            ) from None

    def _duration(self, field_name: str) -> float | None:
        raw = self.raw.get(field_name)
        if raw is None or raw == "":
            return None
        text = self._text(raw, field_name).strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return float(text)
        parts = _DURATION.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            raise AnalysisError(
                f"{self.where}: {field_name} {text!r} is not a duration: write 30s, 5m or 1m30s"
            )
        return sum(float(number) * _UNITS[unit] for number, unit in parts)

    def _integer(self, field_name: str, default: int) -> int:
        raw = self.raw.get(field_name)
        if raw is None or raw == "":
            return default
        text = self._text(raw, field_name).strip()
        try:
            return int(text)
        except ValueError:
            raise AnalysisError(
                f"{self.where}: {field_name} {text!r} is not a whole number"
            ) from None

    def _count(self, interval: float | None) -> int | None:
        """``count`` as given; without it, one measurement, or measuring until stopped when an
        interval is set (Argo Rollouts' reading of a background analysis)."""
        if self.raw.get("count") in (None, ""):
            return None if interval else 1
        count = self._integer("count", 1)
        if count < 1:
            raise AnalysisError(f"{self.where}: count {count} must be 1 or more")
        return count
