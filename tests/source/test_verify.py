"""``fetch(..., verify=SignaturePolicy(...))`` with real keys and really signed commits.

SSH keys come from ``ssh-keygen``, OpenPGP keys from ``gpg`` in throwaway GNUPGHOMEs (their
agents are stopped afterwards); commits are signed by git itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.source.gitrepo import IDENTITY, Origin
from tether.errors import SourceError
from tether.source import SignaturePolicy, fetch
from tether.source.verify import openpgp_blocks, ssh_keys


@dataclass(frozen=True)
class SshKey:
    private: Path
    public: str
    fingerprint: str


@dataclass(frozen=True)
class PgpKey:
    home: Path
    fingerprint: str
    public: str


def _run(*command: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> bytes:
    return subprocess.run(
        command, check=True, capture_output=True, input=stdin, env={**os.environ, **(env or {})}
    ).stdout


@pytest.fixture(scope="module")
def ssh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SshKey]:
    """Two ed25519 keys: ``trusted`` and ``other``."""
    keys = {}
    for name in ("trusted", "other"):
        private = tmp_path_factory.mktemp("ssh") / name
        _run(
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"{name}@example.com",
            "-f",
            str(private),
        )
        public = private.with_suffix(".pub").read_text()
        fingerprint = _run("ssh-keygen", "-l", "-f", str(private.with_suffix(".pub"))).split()[1]
        keys[name] = SshKey(private, public, fingerprint.decode())
    return keys


@pytest.fixture(scope="module")
def pgp() -> Iterator[dict[str, PgpKey]]:
    """Two ed25519 signing keys, each in its own GNUPGHOME: ``trusted`` and ``other``.

    The homes are short temporary paths (gpg-agent's socket path has a length limit); their
    agents are stopped and the homes deleted afterwards.
    """
    keys, homes = {}, []
    try:
        for name in ("trusted", "other"):
            home = Path(tempfile.mkdtemp(prefix="tether-gpg-"))
            homes.append(home)
            env = {"GNUPGHOME": str(home)}
            user = f"{name.title()} <{name}@example.com>"
            _run("gpg", "--batch", "--passphrase", "", "--quick-gen-key", user, "ed25519", "sign", "never", env=env)  # fmt: skip
            listing = _run("gpg", "--batch", "--with-colons", "--list-keys", user, env=env).decode()
            fingerprint = next(
                line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
            )
            public = _run("gpg", "--batch", "--armor", "--export", fingerprint, env=env).decode()
            keys[name] = PgpKey(home, fingerprint, public)
        yield keys
    finally:
        for home in homes:
            subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, "GNUPGHOME": str(home)}, check=False)  # fmt: skip
            shutil.rmtree(home, ignore_errors=True)


def ssh_signed(origin: Origin, key: SshKey, message: str = "signed change") -> str:
    return _commit(origin, message, "-c", "gpg.format=ssh", "-c", f"user.signingkey={key.private}")


def pgp_signed(origin: Origin, key: PgpKey, message: str = "signed change") -> str:
    config = ("-c", "gpg.format=openpgp", "-c", "gpg.program=gpg", "-c", f"user.signingkey={key.fingerprint}")  # fmt: skip
    return _commit(origin, message, *config, env={"GNUPGHOME": str(key.home)})


def _commit(origin: Origin, message: str, *config: str, env: dict[str, str] | None = None) -> str:
    origin.write({"signed.txt": message})
    origin.git("add", "--all")
    _run("git", "-C", str(origin.path), *IDENTITY, *config, "commit", "--quiet", "-S", "-m", message, env=env)  # fmt: skip
    return origin.head()


def tampered(origin: Origin, commit: str, branch: str = "tampered") -> str:
    """A copy of ``commit`` with its message changed but its signature kept, on ``branch``."""
    raw = _run("git", "-C", str(origin.path), "cat-file", "commit", commit)
    assert b"\n\nsigned change" in raw
    forged = raw.replace(b"\n\nsigned change", b"\n\nforged change")
    sha = _run(
        "git", "-C", str(origin.path), "hash-object", "-t", "commit", "-w", "--stdin", stdin=forged
    )
    origin.git("update-ref", f"refs/heads/{branch}", sha.decode().strip())
    return sha.decode().strip()


def refusal(origin: Origin, ref: str, policy: SignaturePolicy, cache: Path) -> str:
    """The message of the SourceError a verified fetch raises; nothing may have been extracted."""
    with pytest.raises(SourceError) as caught:
        fetch(str(origin.path), ref, cache_dir=cache, verify=policy)
    assert not (cache / "artifacts").exists()
    return str(caught.value)


# --- SSH ------------------------------------------------------------------------------------


def test_ssh_signature_by_trusted_key_is_accepted(
    origin: Origin, cache: Path, ssh: dict[str, SshKey]
) -> None:
    commit = ssh_signed(origin, ssh["trusted"])
    policy = SignaturePolicy(ssh_allowed_signers=[ssh["trusted"].public])
    artifact = fetch(str(origin.path), "main", cache_dir=cache, verify=policy)
    assert artifact.revision.commit == commit
    assert (artifact.root / "signed.txt").read_text() == "signed change"
    assert artifact.signature is not None
    assert (artifact.signature.kind, artifact.signature.key) == ("ssh", ssh["trusted"].fingerprint)


def test_unsigned_commit_is_refused(origin: Origin, cache: Path, ssh: dict[str, SshKey]) -> None:
    policy = SignaturePolicy(ssh_allowed_signers=[ssh["trusted"].public])
    message = refusal(origin, "main", policy, cache)
    assert message.startswith(f"commit {origin.head()} of {origin.path} (ref main) is unsigned")
    assert "sign it (git commit -S)" in message


def test_ssh_signature_by_another_key_is_refused(
    origin: Origin, cache: Path, ssh: dict[str, SshKey]
) -> None:
    commit = ssh_signed(origin, ssh["other"])
    policy = SignaturePolicy(ssh_allowed_signers=[ssh["trusted"].public])
    message = refusal(origin, "main", policy, cache)
    assert f"commit {commit} of {origin.path} (ref main) is signed by an unknown key" in message
    assert f"(SSH key {ssh['other'].fingerprint})" in message


def test_tampered_ssh_signed_commit_is_refused(
    origin: Origin, cache: Path, ssh: dict[str, SshKey]
) -> None:
    forged = tampered(origin, ssh_signed(origin, ssh["trusted"]))
    policy = SignaturePolicy(ssh_allowed_signers=[ssh["trusted"].public])
    message = refusal(origin, "tampered", policy, cache)
    assert f"commit {forged} of {origin.path} (ref tampered) has a bad SSH signature" in message
    assert "changed after it was signed" in message


def test_ssh_signature_with_only_openpgp_keys_trusted(
    origin: Origin, cache: Path, ssh: dict[str, SshKey], pgp: dict[str, PgpKey]
) -> None:
    ssh_signed(origin, ssh["trusted"])
    policy = SignaturePolicy(openpgp_public_keys=[pgp["trusted"].public])
    assert "is signed by an unknown key (SSH key" in refusal(origin, "main", policy, cache)


# --- OpenPGP --------------------------------------------------------------------------------


def test_openpgp_signature_by_trusted_key_is_accepted(
    origin: Origin, cache: Path, pgp: dict[str, PgpKey]
) -> None:
    commit = pgp_signed(origin, pgp["trusted"])
    policy = SignaturePolicy(openpgp_public_keys=[pgp["trusted"].public])
    artifact = fetch(str(origin.path), "main", cache_dir=cache, verify=policy)
    assert artifact.revision.commit == commit
    assert artifact.signature is not None
    assert artifact.signature.kind == "openpgp"
    assert artifact.signature.key == pgp["trusted"].fingerprint
    assert artifact.signature.signer == "Trusted <trusted@example.com>"


def test_openpgp_signature_by_another_key_is_refused(
    origin: Origin, cache: Path, pgp: dict[str, PgpKey]
) -> None:
    commit = pgp_signed(origin, pgp["other"])
    policy = SignaturePolicy(openpgp_public_keys=[pgp["trusted"].public])
    message = refusal(origin, "main", policy, cache)
    assert f"commit {commit} of {origin.path} (ref main) is signed by an unknown key" in message
    assert f"OpenPGP key {pgp['other'].fingerprint[-16:]}" in message


def test_tampered_openpgp_signed_commit_is_refused(
    origin: Origin, cache: Path, pgp: dict[str, PgpKey]
) -> None:
    tampered(origin, pgp_signed(origin, pgp["trusted"]))
    policy = SignaturePolicy(openpgp_public_keys=[pgp["trusted"].public])
    assert "(ref tampered) has a bad OpenPGP signature" in refusal(
        origin, "tampered", policy, cache
    )


def test_openpgp_signature_with_only_ssh_keys_trusted(
    origin: Origin, cache: Path, ssh: dict[str, SshKey], pgp: dict[str, PgpKey]
) -> None:
    pgp_signed(origin, pgp["trusted"])
    policy = SignaturePolicy(ssh_allowed_signers=[ssh["trusted"].public])
    assert "is signed by an unknown key (OpenPGP key" in refusal(origin, "main", policy, cache)


def test_openpgp_keyring_is_private_and_temporary(
    origin: Origin,
    cache: Path,
    pgp: dict[str, PgpKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = tmp_path / "users-gnupg"
    users.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(users))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    pgp_signed(origin, pgp["trusted"])
    policy = SignaturePolicy(openpgp_public_keys=[pgp["trusted"].public])
    fetch(str(origin.path), "main", cache_dir=cache, verify=policy)
    assert list(users.iterdir()) == []
    assert list(scratch.iterdir()) == []


def test_openpgp_block_gpg_cannot_import(
    origin: Origin, cache: Path, pgp: dict[str, PgpKey]
) -> None:
    pgp_signed(origin, pgp["trusted"])
    junk = (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    policy = SignaturePolicy(openpgp_public_keys=[pgp["trusted"].public, junk])
    message = refusal(origin, "main", policy, cache)
    assert "OpenPGP key block 2 could not be imported" in message


# --- both, and with other features -----------------------------------------------------------


def test_policy_with_both_kinds_accepts_either(
    origin: Origin, cache: Path, ssh: dict[str, SshKey], pgp: dict[str, PgpKey]
) -> None:
    policy = SignaturePolicy(
        ssh_allowed_signers=[ssh["other"].public + ssh["trusted"].public],
        openpgp_public_keys=[pgp["other"].public + pgp["trusted"].public],
    )
    for sign in (
        lambda: ssh_signed(origin, ssh["trusted"], "by ssh"),
        lambda: pgp_signed(origin, pgp["trusted"], "by pgp"),
    ):
        commit = sign()
        assert fetch(str(origin.path), cache_dir=cache, verify=policy).revision.commit == commit


def test_a_cached_artifact_is_not_returned_unverified(
    origin: Origin, cache: Path, ssh: dict[str, SshKey]
) -> None:
    commit = origin.head()
    assert fetch(str(origin.path), commit, cache_dir=cache).revision.commit == commit
    policy = SignaturePolicy(ssh_allowed_signers=[ssh["trusted"].public])
    with pytest.raises(SourceError, match="is unsigned"):
        fetch(str(origin.path), commit, cache_dir=cache, verify=policy)


def test_semver_ref_is_verified_at_the_chosen_tag(
    origin: Origin, cache: Path, ssh: dict[str, SshKey]
) -> None:
    signed = ssh_signed(origin, ssh["trusted"], "release 1.0.0")
    origin.git("tag", "v1.0.0")
    origin.commit({"x": "unsigned\n"}, message="release 1.1.0")
    origin.git("tag", "v1.1.0")
    policy = SignaturePolicy(ssh_allowed_signers=[ssh["trusted"].public])
    message = refusal(origin, "semver:^1", policy, cache)
    assert f"of {origin.path} (ref v1.1.0) is unsigned" in message
    revision = fetch(str(origin.path), "semver:~1.0", cache_dir=cache, verify=policy).revision
    assert (revision.ref, revision.commit) == ("v1.0.0", signed)


def test_missing_verifier_is_named(
    origin: Origin, cache: Path, ssh: dict[str, SshKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh_signed(origin, ssh["trusted"])
    monkeypatch.setattr("tether.source.verify.shutil.which", lambda name: None)
    policy = SignaturePolicy(ssh_allowed_signers=[ssh["trusted"].public])
    message = refusal(origin, "main", policy, cache)
    assert "cannot check the SSH signature of commit" in message
    assert "ssh-keygen was not found; install openssh-client" in message


# --- the policy itself -----------------------------------------------------------------------


def test_policy_reads_several_keys_per_entry(
    ssh: dict[str, SshKey], pgp: dict[str, PgpKey]
) -> None:
    entry = f"# CI keys\n\n{ssh['trusted'].public}\n{ssh['other'].public}"
    assert len(ssh_keys([entry])) == 2
    assert len(openpgp_blocks([pgp["trusted"].public + "\n" + pgp["other"].public])) == 2


@pytest.mark.parametrize(
    ("ssh_entries", "pgp_entries", "complaint"),
    [
        ([], [], "it trusts no keys"),
        (["# only a comment\n"], [], "it trusts no keys"),
        (["alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"], [], "SSH key 1 is not a public key line"),
        (["ssh-ed25519"], [], "SSH key 1 is not a public key line"),
        (["ssh-ed25519 not-base64!"], [], r"SSH key 1 \(ssh-ed25519\) has a damaged base64 key"),
        (["ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ"], [], "has a damaged base64 key"),
        ([], ["mQINBF..."], "OpenPGP key 1 is not an ASCII-armored public key"),
        ([], ["-----BEGIN PGP PRIVATE KEY BLOCK-----\n..."], "OpenPGP key 1 is a private key"),
    ],
)  # fmt: skip
def test_invalid_policy(ssh_entries: list[str], pgp_entries: list[str], complaint: str) -> None:
    with pytest.raises(SourceError, match=f"^invalid signature policy: .*{complaint}"):
        SignaturePolicy(ssh_allowed_signers=ssh_entries, openpgp_public_keys=pgp_entries)
