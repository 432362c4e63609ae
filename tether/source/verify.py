"""Commit-signature verification: ``fetch(url, ref, verify=SignaturePolicy(...))``.

    SignaturePolicy(ssh_allowed_signers=["ssh-ed25519 AAAA… ci@example.com"],
                    openpgp_public_keys=["-----BEGIN PGP PUBLIC KEY BLOCK-----…"])

When a policy is given, the resolved commit must carry a good signature made by one of its keys;
otherwise ``fetch`` raises ``SourceError`` (naming the URL, ref and commit, and whether the commit
is unsigned, signed by an unknown key, or has a bad signature) before anything is extracted.

git checks the signature itself, with settings that hold for this one command only:

- SSH signatures: an allowed-signers file written in a private temporary directory, one line
  ``* namespaces="git" <type> <key>`` per trusted key (any principal, git's namespace only), and
  ``gpg.ssh.program=ssh-keygen``.
- OpenPGP signatures: a private temporary ``GNUPGHOME`` (never the user's keyring) into which the
  trusted keys are imported and marked ultimately trusted; ``gpg.conf`` there forbids starting an
  agent or fetching keys from the network, and ``gpg.program=gpg``.

The verdict is git's ``%G?`` for the commit, mapped as follows:

    G            good signature by a trusted key           accepted
    N            no signature                              refused: unsigned
    U, E         good signature by a key not in the policy (SSH gives U: no principal matched;
                 OpenPGP gives E: the key is not in the keyring)
                                                           refused: unknown key
    B            the signature does not match the commit   refused: bad signature
    X, Y, R      expired signature, expired or revoked key refused, saying which

The kind of signature is read from the commit's ``gpgsig`` header first, so an unsigned commit
costs one ``git cat-file`` and a missing ``ssh-keygen`` or ``gpg`` is reported as such (git
would report a bad signature). X.509 (gpgsm) signatures are refused as uncheckable.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tether.errors import SourceError
from tether.source.git import Deadline, GitError

if TYPE_CHECKING:
    from tether.source.mirror import Mirror

Kind = Literal["ssh", "openpgp"]

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"
_SIGNATURE_HEADERS = (b"gpgsig ", b"gpgsig-sha256 ")
_SIGNATURE_KINDS: dict[bytes, str] = {
    b"-----BEGIN SSH SIGNATURE-----": "ssh",
    b"-----BEGIN PGP SIGNATURE-----": "openpgp",
    b"-----BEGIN PGP MESSAGE-----": "openpgp",
    b"-----BEGIN SIGNED MESSAGE-----": "x509",
}
_TOOLS: dict[Kind, tuple[str, str]] = {
    "ssh": ("ssh-keygen", "openssh-client"),
    "openpgp": ("gpg", "gnupg"),
}
_CHECKABLE: dict[str, Kind] = {"ssh": "ssh", "openpgp": "openpgp"}
_GPG_CHATTER = re.compile(r"created$|agent|Total number processed|^\s+\w+: \d+$")
_GPG_CONF = "no-autostart\nno-auto-key-retrieve\n"
_FORMAT = "--format=%G?%x00%GP%x00%GF%x00%GK%x00%GS"  # never %GT: git 2.39 aborts on it
_KIND_NAMES: dict[Kind, str] = {"ssh": "SSH", "openpgp": "OpenPGP"}


@dataclass(frozen=True)
class SignaturePolicy:
    """The keys a commit must be signed by (either list may be empty, not both).

    ``ssh_allowed_signers``: SSH public keys as in a ``.pub`` file (``ssh-ed25519 AAAA… comment``);
    an entry may hold several, one per line (blank and ``#`` lines are skipped).
    ``openpgp_public_keys``: ASCII-armored OpenPGP public keys (``gpg --armor --export``); an entry
    may hold several blocks. Raises ``SourceError`` when a key is malformed or none is given.
    """

    ssh_allowed_signers: list[str] = field(default_factory=list)
    openpgp_public_keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ssh = ssh_keys(self.ssh_allowed_signers)
        openpgp = openpgp_blocks(self.openpgp_public_keys)
        if not ssh and not openpgp:
            raise SourceError(
                "invalid signature policy: it trusts no keys, so every commit would be refused; "
                "give at least one SSH or OpenPGP public key"
            )


@dataclass(frozen=True)
class Signature:
    """A good signature by a trusted key: its kind, key fingerprint and (OpenPGP) user ID."""

    kind: Kind
    key: str
    signer: str = ""


def ssh_keys(entries: list[str]) -> list[tuple[str, str]]:
    """``(type, base64 key)`` of every SSH public key in ``entries``; ``SourceError`` if one is bad."""
    keys = []
    for number, entry in enumerate(entries, start=1):
        for line in entry.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if fields[0] not in SSH_KEY_TYPES or len(fields) < 2:
                raise SourceError(
                    f"invalid signature policy: SSH key {number} is not a public key line "
                    f"(it should start with one of {', '.join(SSH_KEY_TYPES[:3])}, …); give the "
                    "contents of a .pub file"
                )
            if not _blob_matches(fields[0], fields[1]):
                raise SourceError(
                    f"invalid signature policy: SSH key {number} ({fields[0]}) has a damaged "
                    "base64 key; copy the whole line of the .pub file again"
                )
            keys.append((fields[0], fields[1]))
    return keys


def _blob_matches(key_type: str, blob: str) -> bool:
    """True when ``blob`` is base64 of an SSH public key that starts with ``key_type``."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return False
    length = int.from_bytes(raw[:4], "big")
    return len(raw) > 4 + length and raw[4 : 4 + length] == key_type.encode()


def openpgp_blocks(entries: list[str]) -> list[str]:
    """Every armored public key block in ``entries``; ``SourceError`` if an entry has none."""
    blocks = []
    for number, entry in enumerate(entries, start=1):
        if "PRIVATE KEY BLOCK" in entry:
            raise SourceError(
                f"invalid signature policy: OpenPGP key {number} is a private key; give only the "
                "public key (gpg --armor --export <id>) and rotate the private one if it was shared"
            )
        found = list(_armored(entry))
        if not found:
            raise SourceError(
                f"invalid signature policy: OpenPGP key {number} is not an ASCII-armored public "
                f"key (no {_ARMOR_BEGIN} … {_ARMOR_END}); export it with gpg --armor --export <id>"
            )
        blocks += found
    return blocks


def _armored(text: str) -> Iterator[str]:
    start = text.find(_ARMOR_BEGIN)
    while start >= 0:
        end = text.find(_ARMOR_END, start)
        if end < 0:
            return
        yield text[start : end + len(_ARMOR_END)] + "\n"
        start = text.find(_ARMOR_BEGIN, end)


def verify_commit(mirror: Mirror, commit: str, policy: SignaturePolicy, ref: str) -> Signature:
    """The trusted signature on ``commit``; ``SourceError`` saying why when it has none."""
    about = f"commit {commit} of {mirror.git.remote.display} (ref {ref})"
    kind = signature_kind(mirror, commit)
    if kind is None:
        raise SourceError(
            f"{about} is unsigned, but the source requires a signature by a trusted key; sign "
            "it (git commit -S) with one of the trusted keys, or fetch a signed ref"
        )
    checked = _CHECKABLE.get(kind)
    if checked is None:
        raise SourceError(
            f"{about} carries an {'X.509' if kind == 'x509' else 'unknown'} signature, which "
            "Tether cannot check; sign commits with an SSH or OpenPGP key"
        )
    program, package = _TOOLS[checked]
    if shutil.which(program) is None:
        raise SourceError(
            f"cannot check the {_KIND_NAMES[checked]} signature of {about}: {program} was not "
            f"found; install {package} and make sure {program} is on PATH"
        )
    try:
        verdict = _ask_git(mirror, commit, policy, checked)
    except GitError as error:
        if error.timed_out:
            raise
        raise SourceError(f"cannot check the signature of {about}: {error.reason}") from None
    except SourceError as error:
        raise SourceError(f"cannot check the signature of {about}: {error}") from None
    return _judge(verdict, checked, about)


def signature_kind(mirror: Mirror, commit: str) -> str | None:
    """``ssh``, ``openpgp``, ``x509`` or ``unknown`` from the commit's signature header; None if unsigned."""
    raw = mirror.git.run("cat-file", "commit", commit, git_dir=mirror.path)
    headers = raw.split(b"\n\n", 1)[0]
    for line in headers.split(b"\n"):
        if line.startswith(_SIGNATURE_HEADERS):
            first = line.split(b" ", 1)[1].strip()
            return _SIGNATURE_KINDS.get(first, "unknown")
    return None


@dataclass(frozen=True)
class _Verdict:
    status: str
    primary: str
    fingerprint: str
    key: str
    signer: str


def _ask_git(mirror: Mirror, commit: str, policy: SignaturePolicy, kind: Kind) -> _Verdict:
    """git's ``%G?`` verdict on ``commit``, checked against only the policy's keys."""
    env: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="tether-verify-") as scratch:
        if kind == "ssh":
            config = _ssh_settings(policy, Path(scratch))
        else:
            home = _keyring(policy, Path(scratch) / "gnupg", mirror.git.deadline)
            config, env["GNUPGHOME"] = ("gpg.program=gpg", "gpg.openpgp.program=gpg"), str(home)
        out = mirror.git.run(
            "show", "-s", _FORMAT, commit, "--", git_dir=mirror.path, config=config, env=env
        )
    fields = out.decode(errors="replace").rstrip("\n").split("\0")
    return _Verdict(*(*fields, "", "", "", "", "")[:5])


def _ssh_settings(policy: SignaturePolicy, scratch: Path) -> tuple[str, ...]:
    """Write the allowed-signers file (empty when no SSH key is trusted: git needs one)."""
    signers = scratch / "allowed_signers"
    lines = [
        f'* namespaces="git" {kind} {blob}\n' for kind, blob in ssh_keys(policy.ssh_allowed_signers)
    ]
    signers.write_text("".join(lines))
    return (f"gpg.ssh.allowedSignersFile={signers}", "gpg.ssh.program=ssh-keygen")


def _keyring(policy: SignaturePolicy, home: Path, deadline: Deadline) -> Path:
    """A new GNUPGHOME holding exactly the policy's OpenPGP keys, each ultimately trusted."""
    home.mkdir(mode=0o700)
    (home / "gpg.conf").write_text(_GPG_CONF)
    (home / "common.conf").write_text("")  # GnuPG 2.4: no keyboxd daemon for a new home
    fingerprints: list[str] = []
    for number, block in enumerate(openpgp_blocks(policy.openpgp_public_keys), start=1):
        result = _gpg(home, deadline, "--status-fd", "1", "--import", stdin=block.encode())
        status = result.stdout.decode(errors="replace").splitlines()
        imported = [line.split()[3] for line in status if line.startswith("[GNUPG:] IMPORT_OK ")]
        if not imported:  # the exit status also reports an agent it could not reach: ignored
            reason = _gpg_reason(result.stderr)
            raise SourceError(
                f"invalid signature policy: OpenPGP key block {number} could not be imported "
                f"({reason}); export the key again with gpg --armor --export <id>"
            )
        fingerprints += imported
    if fingerprints:
        trust = "".join(f"{fingerprint}:6:\n" for fingerprint in fingerprints).encode()
        result = _gpg(home, deadline, "--import-ownertrust", stdin=trust)
        if result.returncode != 0:
            raise SourceError(
                f"cannot prepare the OpenPGP keyring to check signatures: "
                f"{_gpg_reason(result.stderr)}"
            )
    return home


def _gpg(
    home: Path, deadline: Deadline, *args: str, stdin: bytes
) -> subprocess.CompletedProcess[bytes]:
    """Run gpg on the private ``home`` within the fetch's deadline."""
    env: Mapping[str, str] = {**os.environ, "GNUPGHOME": str(home), "LC_ALL": "C", "LANGUAGE": "C"}
    try:
        return subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
            input=stdin,
            capture_output=True,
            env=env,
            timeout=max(deadline.remaining(), 0.001),
            check=False,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise GitError(
            f"gpg {args[-1]} did not finish within {deadline.seconds:g}s",
            remote=False,
            timed_out=True,
        ) from None


def _gpg_reason(stderr: bytes) -> str:
    """gpg's complaints, without its chatter about files it created and agents it looked for."""
    lines = [line.removeprefix("gpg: ") for line in stderr.decode(errors="replace").splitlines()]
    kept = dict.fromkeys(line for line in lines if line.strip() and not _GPG_CHATTER.search(line))
    return "; ".join(kept)[:300] or "gpg gave no reason"


def _judge(verdict: _Verdict, kind: Kind, about: str) -> Signature:
    """Accept a good signature by a trusted key; otherwise say what is wrong and what to do."""
    key = verdict.primary or verdict.fingerprint or verdict.key
    name = _KIND_NAMES[kind]
    by = f" ({name} key {key})" if key else ""
    status = verdict.status
    if status == "G":
        return Signature(kind, key, verdict.signer if kind == "openpgp" else "")
    if status in ("U", "E"):
        problem = (
            f"is signed by an unknown key{by or f' ({name})'}, not one the source trusts; add "
            "its public key to the trusted keys if it should be, or fetch a commit signed by a "
            "trusted key"
        )
    elif status == "B":
        problem = (
            f"has a bad {name} signature{by}: the commit was changed after it was signed, or the "
            "signature is corrupt; do not deploy it, and find out how it got into the repository"
        )
    elif status in ("X", "Y", "R"):
        what = {"X": "has an expired signature", "Y": "is signed by an expired key"}
        problem = (
            f"{what.get(status, 'is signed by a revoked key')}{by}; re-sign it with a current "
            "trusted key"
        )
    elif status == "N":
        problem = f"has a {name} signature this git cannot check (SSH needs git 2.34+); upgrade git"
    else:
        problem = f"has a {name} signature git could not judge (%G? = {status!r})"
    raise SourceError(f"{about} {problem}")
