"""``tether secrets keygen | encrypt | decrypt | edit | rotate | updatekeys``: SOPS files with age.

Each command behaves like its ``sops`` counterpart and reads and writes files ``sops`` reads and
writes. Output goes to stdout unless ``-i/--in-place``; messages go to stderr. Exit codes: 0 ok,
2 error. Identities come from ``$SOPS_AGE_KEY``, ``$SOPS_AGE_KEY_FILE`` or
``$XDG_CONFIG_HOME/sops/age/keys.txt``; recipients from ``--age`` or the nearest ``.sops.yaml``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tether.cli import output
from tether.errors import SecretsError, TetherError

if TYPE_CHECKING:  # the package (age, cryptography) is imported by the command that runs
    from tether.secrets import EditSession, EncryptionRules, Format

secrets_app = typer.Typer(
    help="Encrypt Kubernetes manifests and other YAML/JSON files with SOPS and age, so they can "
    "live in Git. Files are compatible with the sops binary both ways. See docs/secrets.md.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

FileArg = Annotated[
    Path, typer.Argument(help="The YAML or JSON file.", metavar="FILE", show_default=False)
]
InPlaceOpt = Annotated[
    bool, typer.Option("-i", "--in-place", help="Write the result to FILE instead of stdout.")
]
InputTypeOpt = Annotated[
    str | None,
    typer.Option("--input-type", help="yaml or json (default: from the file's extension)."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="The .sops.yaml to use (default: the nearest above FILE)."),
]
AgeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--age",
        help="age recipient (age1…) to encrypt for; repeat or separate with commas. "
        "Overrides .sops.yaml.",
    ),
]


def _fail(error: Exception) -> typer.Exit:
    output.print_error(error)
    return typer.Exit(2)


def _say(message: str) -> None:
    output.err.print(message)


def _format(file: Path, input_type: str | None) -> Format:
    from tether.secrets import format_for_path

    if input_type is None:
        return format_for_path(file)
    if input_type not in ("yaml", "json"):
        raise SecretsError(f"--input-type must be yaml or json, not {input_type!r}")
    return input_type  # type: ignore[return-value]


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretsError(f"{file} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise SecretsError(f"cannot read {file}: {reason}") from None


def _write(file: Path, text: str) -> None:
    """Replace ``file`` atomically, keeping its permissions (0600 for a new file)."""
    try:
        mode = file.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    handle, temporary = tempfile.mkstemp(prefix=f".{file.name}.", dir=file.parent or Path("."))
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, file)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _emit(file: Path, text: str, in_place: bool) -> None:
    if in_place:
        _write(file, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _rules_from_flags(
    encrypted_regex: str | None,
    unencrypted_regex: str | None,
    encrypted_suffix: str | None,
    unencrypted_suffix: str | None,
    mac_only_encrypted: bool,
) -> EncryptionRules | None:
    from tether.secrets import EncryptionRules

    selectors = {
        "encrypted_regex": encrypted_regex,
        "unencrypted_regex": unencrypted_regex,
        "encrypted_suffix": encrypted_suffix,
        "unencrypted_suffix": unencrypted_suffix,
    }
    chosen = {name: value for name, value in selectors.items() if value}
    if not chosen and not mac_only_encrypted:
        return None
    return EncryptionRules(**chosen, mac_only_encrypted=mac_only_encrypted)


def _recipients_and_rules(
    file: Path, age: list[str] | None, config: Path | None, flags: EncryptionRules | None
) -> tuple[list[str], EncryptionRules | None]:
    """``--age`` and the rule flags, or the matching ``.sops.yaml`` creation rule."""
    from tether.secrets import find_creation_rule

    if age:
        return age, flags
    rule = find_creation_rule(file, config)
    _say(f"using {rule}")
    return list(rule.recipients), flags or rule.rules


EncryptedRegexOpt = Annotated[
    str | None,
    typer.Option("--encrypted-regex", help="Encrypt only values under keys matching this regex."),
]
UnencryptedRegexOpt = Annotated[
    str | None,
    typer.Option("--unencrypted-regex", help="Keep values under keys matching this in clear."),
]
EncryptedSuffixOpt = Annotated[
    str | None,
    typer.Option("--encrypted-suffix", help="Encrypt only values under keys with this suffix."),
]
UnencryptedSuffixOpt = Annotated[
    str | None,
    typer.Option(
        "--unencrypted-suffix",
        help="Keep values under keys with this suffix in clear (default: _unencrypted).",
    ),
]
MacOnlyEncryptedOpt = Annotated[
    bool,
    typer.Option("--mac-only-encrypted", help="Leave values kept in clear out of the MAC."),
]


@secrets_app.command(
    epilog="Examples:\n\n"
    "  tether secrets keygen                          # ~/.config/sops/age/keys.txt\n\n"
    "  tether secrets keygen -o cluster.agekey        # a key for the cluster's Secret\n\n"
    "  kubectl -n tether-system create secret generic sops-age "
    "--from-file=age.agekey=cluster.agekey"
)
def keygen(
    output_path: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Where to write the identity (mode 0600); '-' for stdout. "
            "Default: $XDG_CONFIG_HOME/sops/age/keys.txt.",
        ),
    ] = None,
) -> None:
    """Create an age identity (private key) file and print its public recipient."""
    from tether.secrets import default_key_file, generate_identity

    identity, recipient = generate_identity()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    content = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    if output_path is not None and str(output_path) == "-":
        sys.stdout.write(content)
        _say(f"public key: {recipient}")
        return
    path = output_path or default_key_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _fail(
            SecretsError(f"{path} already exists; not overwriting it (choose another -o FILE)")
        ) from None
    except OSError as error:
        raise _fail(SecretsError(f"cannot write {path}: {error.strerror}")) from None
    with os.fdopen(handle, "w") as stream:
        stream.write(content)
    _say(f"wrote a new age identity to {path}; keep it secret. Its public key:")
    sys.stdout.write(recipient + "\n")


@secrets_app.command(
    epilog="Examples:\n\n"
    "  tether secrets encrypt -i apps/web/secret.yaml              # recipients from .sops.yaml\n\n"
    "  tether secrets encrypt --age age1… --encrypted-regex '^(data|stringData)$' "
    "secret.yaml > secret.enc.yaml"
)
def encrypt(
    file: FileArg,
    age: AgeOpt = None,
    config: ConfigOpt = None,
    in_place: InPlaceOpt = False,
    input_type: InputTypeOpt = None,
    encrypted_regex: EncryptedRegexOpt = None,
    unencrypted_regex: UnencryptedRegexOpt = None,
    encrypted_suffix: EncryptedSuffixOpt = None,
    unencrypted_suffix: UnencryptedSuffixOpt = None,
    mac_only_encrypted: MacOnlyEncryptedOpt = False,
) -> None:
    """Encrypt a plaintext file's values for age recipients (like `sops encrypt`)."""
    from tether.secrets import encrypt_document

    try:
        fmt = _format(file, input_type)
        flags = _rules_from_flags(
            encrypted_regex,
            unencrypted_regex,
            encrypted_suffix,
            unencrypted_suffix,
            mac_only_encrypted,
        )
        recipients, rules = _recipients_and_rules(file, age, config, flags)
        text = encrypt_document(_read(file), fmt, recipients, rules, source=str(file))
        _emit(file, text, in_place)
    except TetherError as error:
        raise _fail(error) from None


@secrets_app.command(
    epilog="Examples:\n\n"
    "  tether secrets decrypt apps/web/secret.yaml\n\n"
    '  tether secrets decrypt --extract \'["stringData"]["password"]\' secret.yaml\n\n'
    "  SOPS_AGE_KEY_FILE=cluster.agekey tether secrets decrypt secret.json"
)
def decrypt(
    file: FileArg,
    in_place: InPlaceOpt = False,
    input_type: InputTypeOpt = None,
    extract_path: Annotated[
        str | None,
        typer.Option(
            "--extract", help='Print only the value at this path, e.g. \'["data"]["password"]\'.'
        ),
    ] = None,
) -> None:
    """Decrypt a file (its MAC is checked first) and print it (like `sops decrypt`)."""
    from tether.secrets import decrypt_document, extract, load_identities

    try:
        fmt = _format(file, input_type)
        text = decrypt_document(_read(file), fmt, load_identities(), source=str(file))
        if extract_path is not None:
            if in_place:
                raise SecretsError("--extract cannot be combined with --in-place")
            text = extract(text, fmt, extract_path, source=str(file))
        _emit(file, text, in_place)
    except TetherError as error:
        raise _fail(error) from None


@contextlib.contextmanager
def _private_file(name: str, text: str) -> Iterator[Path]:
    """``text`` in a new file (0600) in a new private directory (0700), both removed (and the
    file overwritten) afterwards, whatever happens in between."""
    directory = Path(tempfile.mkdtemp(prefix="tether-secrets-"))
    try:
        path = directory / name
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        yield path
    finally:
        for leftover in directory.iterdir():
            with contextlib.suppress(OSError):
                size = leftover.stat().st_size
                with leftover.open("r+b") as stream:
                    stream.write(b"\0" * size)
        shutil.rmtree(directory, ignore_errors=True)


def _editor_command(path: Path) -> list[str]:
    editor = os.environ.get("SOPS_EDITOR") or os.environ.get("EDITOR") or "vi"
    return [*shlex.split(editor), str(path)]


def _edit_loop(session: EditSession, file: Path) -> str | None:
    """The re-encrypted text after the editor ran, or None when nothing was changed."""
    with _private_file(f"plaintext{file.suffix}", session.plaintext) as path:
        while True:
            command = _editor_command(path)
            try:
                result = subprocess.run(command, check=False)
            except OSError as error:
                raise SecretsError(
                    f"cannot run the editor {command[0]!r} ($SOPS_EDITOR, $EDITOR): "
                    f"{error.strerror}; {file} was left unchanged"
                ) from None
            if result.returncode != 0:
                raise SecretsError(
                    f"the editor {command[0]!r} exited with status {result.returncode}; "
                    f"{file} was left unchanged"
                )
            edited = path.read_text(encoding="utf-8")
            if edited == session.plaintext:
                return None
            try:
                return session.encrypt(edited)
            except SecretsError as error:
                if not sys.stdin.isatty():
                    raise SecretsError(f"{error}; {file} was left unchanged") from None
                _say(f"error: {error}")
                input("Press Enter to return to the editor, or Ctrl+C to give up. ")


@secrets_app.command(
    epilog="Examples:\n\n"
    "  tether secrets edit apps/web/secret.yaml\n\n"
    "  EDITOR='code --wait' tether secrets edit secret.json\n\n"
    "  tether secrets edit new-secret.yaml    # creates it, recipients from .sops.yaml"
)
def edit(
    file: FileArg,
    age: AgeOpt = None,
    config: ConfigOpt = None,
    input_type: InputTypeOpt = None,
) -> None:
    """Open the decrypted file in $EDITOR and re-encrypt what changed (like `sops edit`).

    The plaintext lives in a 0600 file in a private temporary directory, removed afterwards
    even when the editor fails. The data key is kept and unchanged values keep their
    ciphertext. A file that does not exist yet is created.
    """
    from tether.secrets import EditSession, load_identities

    try:
        fmt = _format(file, input_type)
        if file.exists():
            session = EditSession.open(_read(file), fmt, load_identities(), source=str(file))
        else:
            recipients, rules = _recipients_and_rules(file, age, config, None)
            session = EditSession.new(fmt, recipients, rules, source=str(file))
        text = _edit_loop(session, file)
        if text is None:
            _say(f"{file} has not changed")
            return
        _write(file, text)
        _say(f"{file} re-encrypted")
    except TetherError as error:
        raise _fail(error) from None


@secrets_app.command(
    epilog="Examples:\n\n"
    "  tether secrets rotate -i apps/web/secret.yaml\n\n"
    "  tether secrets rotate -i --add-age age1new… --rm-age age1old… secret.yaml"
)
def rotate(
    file: FileArg,
    in_place: InPlaceOpt = False,
    input_type: InputTypeOpt = None,
    add_age: Annotated[
        list[str] | None, typer.Option("--add-age", help="Also encrypt for this recipient.")
    ] = None,
    rm_age: Annotated[
        list[str] | None, typer.Option("--rm-age", help="No longer encrypt for this recipient.")
    ] = None,
) -> None:
    """Re-encrypt every value with a new data key (like `sops rotate`)."""
    from tether.secrets import load_identities, rotate_document

    try:
        fmt = _format(file, input_type)
        text = rotate_document(
            _read(file),
            fmt,
            load_identities(),
            add_recipients=add_age or [],
            remove_recipients=rm_age or [],
            source=str(file),
        )
        _emit(file, text, in_place)
    except TetherError as error:
        raise _fail(error) from None


@secrets_app.command(
    epilog="Examples:\n\n"
    "  tether secrets updatekeys apps/web/secret.yaml        # asks before writing\n\n"
    "  tether secrets updatekeys -y apps/*/secret.yaml"
)
def updatekeys(
    files: Annotated[
        list[Path], typer.Argument(help="Encrypted files.", metavar="FILE...", show_default=False)
    ],
    yes: Annotated[bool, typer.Option("-y", "--yes", help="Do not ask for confirmation.")] = False,
    config: ConfigOpt = None,
    input_type: InputTypeOpt = None,
) -> None:
    """Re-wrap the data key for the recipients .sops.yaml lists now (like `sops updatekeys`).

    Values, the data key and the MAC are unchanged; only who can decrypt changes.
    """
    from tether.secrets import find_creation_rule, key_changes, load_identities, update_keys

    try:
        identities = load_identities()
        for file in files:
            fmt = _format(file, input_type)
            rule = find_creation_rule(file, config)
            text = _read(file)
            changes = key_changes(text, fmt, rule.recipients, source=str(file))
            if not changes:
                _say(f"{file}: already up to date ({rule})")
                continue
            _say(f"{file}: the recipients will change ({rule}):")
            for recipient in changes.added:
                _say(f"  + {recipient}")
            for recipient in changes.removed:
                _say(f"  - {recipient}")
            for key_type in changes.dropped_key_types:
                _say(f"  - all {key_type} keys")
            if not yes and not typer.confirm("Is this okay?", default=False, err=True):
                _say(f"{file} left unchanged")
                continue
            _write(file, update_keys(text, fmt, identities, rule.recipients, source=str(file)))
            _say(f"{file}: keys updated")
    except TetherError as error:
        raise _fail(error) from None
