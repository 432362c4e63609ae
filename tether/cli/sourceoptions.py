"""The source and access options of ``tether sync`` and ``tether diff`` as the specs the sync
engine takes: a Git path, a Helm chart (with its ``--set`` values) or an OCI artifact, and how to
reach the API server. Imported by those two commands when they run, with the engine's stack.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import typer

from tether.cli.oci import allowed_digests, oci_spec
from tether.reconcile.charts import ChartSpec
from tether.reconcile.decrypt import KeySources
from tether.reconcile.run import OCISpec, SourceSpec
from tether.render import SetValue


def access_settings(
    concurrency: int,
    team: str,
    service_account: str,
    decryption_secret: str,
    key_files: list[str] | None,
) -> dict[str, Any]:
    """What ``sync`` and ``diff`` share: how hard to press the API server, as whom, with which
    limits and keys."""
    return {
        "concurrency": concurrency,
        "team": team,
        "impersonate": service_account,
        "keys": KeySources(decryption_secret, tuple(key_files or ())),
    }


def chart_spec(
    chart: str,
    repo: str,
    version: str | None,
    values: list[str] | None,
    release: str,
    auth: tuple[str, str, str],
    patches: list[str] | None = None,
    registry: tuple[bool, tuple[str, ...]] = (False, ()),
) -> ChartSpec | None:
    """The chart the options name, or None without ``--chart``. ``REPO_URL/CHART`` (or
    ``oci://HOST/PATH/CHART``) is split at its last ``/``; ``auth`` is (username, password file,
    CA file); ``registry`` (plain http, allowed digests) applies to ``oci://`` charts."""
    if not chart:
        if repo or version or values or patches:
            raise typer.BadParameter(
                "--repo, --version, --values and --post-render-patch need --chart"
            )
        return None
    if not repo and chart.startswith(("http://", "https://", "oci://")):
        repo, _, chart = chart.rstrip("/").rpartition("/")
    if version and not repo:
        raise typer.BadParameter(
            "--version selects a chart of a Helm repository; a chart in Git is pinned by --ref",
            param_hint="--version",
        )
    username, password_file, ca_file = auth
    return ChartSpec(
        chart,
        repo,
        version,
        tuple(values or ()),
        release=release,
        username=username,
        password_file=password_file,
        ca_file=ca_file,
        patches=tuple(patches or ()),
        plain_http=registry[0],
        allowed_digests=registry[1],
    )


def with_set_values(
    chart: ChartSpec | None, set_values: list[str] | None, set_strings: list[str] | None
) -> ChartSpec | None:
    """``chart`` with its ``--set``/``--set-string`` values (helm parses them)."""
    given = [("--set", v) for v in set_values or []] + [
        ("--set-string", v) for v in set_strings or []
    ]
    if not given:
        return chart
    if chart is None:
        raise typer.BadParameter("--set and --set-string need --chart")
    for flag, expression in given:
        if "=" not in expression:
            raise typer.BadParameter(
                f"{flag} takes KEY=VALUE (helm's syntax: a.b=1,c[0]=x)", param_hint=flag
            )
    return replace(chart, set_values=tuple(SetValue(flag, value) for flag, value in given))


def source_spec(
    source: str,
    path: str,
    ref: str | None,
    token_file: str,
    chart: ChartSpec | None,
    oci: OCISpec | None = None,
) -> SourceSpec:
    """Where the app's manifests come from; ``--source`` may be left out only for a chart of a
    Helm repository or an OCI artifact (``--oci``, which excludes ``--source`` and ``--chart``)."""
    if oci is not None:
        if source or chart is not None:
            raise typer.BadParameter("--oci is the source: leave out --source and --chart")
        return SourceSpec(oci.reference, path, oci=oci)
    if not source and (chart is None or not chart.repository):
        raise typer.BadParameter("--source (or --oci) is required", param_hint="--source")
    return SourceSpec(source, path, ref, token_file, chart=chart)


def source_of_options(
    git: tuple[str, str, str | None, str],
    charted: tuple[str, str, str | None, list[str] | None, str, list[str] | None],
    auth: tuple[str, str, str],
    registry: tuple[str, bool, list[str] | None],
    set_options: tuple[list[str] | None, list[str] | None] = (None, None),
) -> SourceSpec:
    """The ``SourceSpec`` of sync's and diff's source options (Git, chart with its ``--set``
    values, OCI)."""
    source, path, ref, token_file = git
    chart, repo, version, values, release, patches = charted
    oci, plain_http, allow_digest = registry
    allowed = allowed_digests(allow_digest)
    if allowed and not (oci or chart.startswith("oci://") or repo.startswith("oci://")):
        raise typer.BadParameter("--allow-digest applies to --oci and oci:// charts only")
    chart_of = chart_spec(
        chart, repo, version, values, release, auth, patches, (plain_http, allowed)
    )
    chart_of = with_set_values(chart_of, *set_options)
    return source_spec(
        source, path, ref, token_file, chart_of, oci_spec(oci, ref, auth, plain_http, allowed)
    )
