"""OCI on the command line: ``tether push artifact`` and the options ``sync`` and ``diff`` take
for sources in OCI registries (``--oci``, ``--chart oci://…``, ``--plain-http``,
``--allow-digest``).

    tether push artifact oci://HOST/REPO:TAG --path DIR --source URL --revision REV
    tether sync --oci oci://HOST/REPO:TAG --path apps/web --app web -n web
    tether sync --chart oci://HOST/charts/shop --version '^2' --app shop -n shop

The login (``--username`` / ``--password-file`` here, ``--repo-username`` /
``--repo-password-file`` on sync and diff) is read from the file on every run, never from the
command line. See docs/oci.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tether.cli import output
from tether.errors import TetherError

if TYPE_CHECKING:
    from tether.reconcile.run import OCISpec

push_app = typer.Typer(
    help="Publish to an OCI registry.", no_args_is_help=True, rich_markup_mode="rich"
)

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

OciOpt = Annotated[
    str,
    typer.Option(
        "--oci",
        help="OCI artifact holding the manifests (Flux's format): oci://HOST/REPO:TAG or "
        "oci://HOST/REPO@sha256:DIGEST. --path is a directory inside it.",
    ),
]
PlainHttpOpt = Annotated[
    bool,
    typer.Option("--plain-http", help="Talk plain http to the OCI registry (a loopback registry)."),
]
AllowDigestOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-digest",
        help="Only accept an OCI artifact or chart whose manifest has this digest (repeatable).",
    ),
]


def allowed_digests(values: list[str] | None) -> tuple[str, ...]:
    digests = tuple(values or ())
    for digest in digests:
        if not _DIGEST.match(digest):
            raise typer.BadParameter(
                f"{digest!r} is not a sha256 digest (sha256: and 64 lowercase hex digits)",
                param_hint="--allow-digest",
            )
    return digests


def oci_spec(
    oci: str,
    ref: str | None,
    auth: tuple[str, str, str],
    plain_http: bool,
    allowed: tuple[str, ...],
) -> OCISpec | None:
    """The OCI artifact the options name, or None without ``--oci``."""
    if not oci:
        return None
    if not oci.startswith("oci://"):
        raise typer.BadParameter("write oci://HOST/REPO:TAG", param_hint="--oci")
    if ref:
        raise typer.BadParameter(
            "--ref selects a Git revision; an OCI artifact is selected by its :TAG or @DIGEST",
            param_hint="--ref",
        )
    from tether.reconcile.run import OCISpec

    username, password_file, ca_file = auth
    return OCISpec(oci, username, password_file, ca_file, plain_http, allowed)


@push_app.command(
    "artifact",
    epilog="Example:\n\n  tether push artifact oci://registry.example.com/apps/web:1.4.2 --path deploy "
    '--source "$(git remote get-url origin)" --revision "main@sha1:$(git rev-parse HEAD)"',
)
def artifact(
    reference: Annotated[str, typer.Argument(help="oci://HOST/REPO:TAG to push to.")],
    path: Annotated[Path, typer.Option("--path", help="Directory to pack.")] = Path("."),
    source: Annotated[
        str, typer.Option("--source", help="Where the content comes from (e.g. the Git URL).")
    ] = "",
    revision: Annotated[
        str, typer.Option("--revision", help="Its revision (e.g. main@sha1:COMMIT).")
    ] = "",
    username: Annotated[str, typer.Option("--username", help="Registry user.")] = "",
    password_file: Annotated[
        str, typer.Option("--password-file", help="File holding the registry password or token.")
    ] = "",
    ca_file: Annotated[str, typer.Option("--ca-file", help="CA bundle (PEM) for https.")] = "",
    plain_http: PlainHttpOpt = False,
) -> None:
    """Pack a directory as an OCI artifact in Flux's format and push it; prints its digest."""
    from tether.source import ChartRepositoryAuth
    from tether.source.oci import OCIAuth, push_artifact

    credentials = ChartRepositoryAuth(username, Path(password_file)) if password_file else None
    auth = OCIAuth(credentials, Path(ca_file) if ca_file else None, plain_http)
    try:
        digest = push_artifact(reference, path, source, revision, auth)
    except TetherError as error:
        output.print_error(error)
        raise typer.Exit(2) from None
    print(digest)
