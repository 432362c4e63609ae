"""Identities are found where sops finds them, plus the ones a caller passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.secrets.conftest import AgeKey, make_key
from tether.errors import SecretsError
from tether.secrets import decrypt_document, encrypt_document, generate_identity, load_identities


def test_generated_identities_are_age_x25519() -> None:
    identity, recipient = generate_identity()
    assert identity.startswith("AGE-SECRET-KEY-1") and recipient.startswith("age1")
    assert load_identities([identity], environment=False).recipients == (recipient,)


def test_sops_age_key_may_hold_several_keys(
    alice: AgeKey, bob: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY", f"{alice.identity} {bob.identity}")
    found = load_identities()
    assert found.recipients == (alice.recipient, bob.recipient)
    assert found.searched[0] == "SOPS_AGE_KEY (2 identities)"


def test_all_places_are_used_in_sops_order(
    tmp_path: Path, alice: AgeKey, bob: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    carol = make_key(tmp_path / "xdg-config" / "sops" / "age", "keys")
    (tmp_path / "xdg-config" / "sops" / "age" / "keys.agekey").rename(
        tmp_path / "xdg-config" / "sops" / "age" / "keys.txt"
    )
    monkeypatch.setenv("SOPS_AGE_KEY", alice.identity)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(bob.file))
    found = load_identities(["# from a Secret\n" + generate_identity()[0]], source="Secret s")
    assert found.recipients[1:] == (alice.recipient, bob.recipient, carol.recipient)
    assert [s.split(" (")[0] for s in found.searched] == [
        "Secret s",
        "SOPS_AGE_KEY",
        f"SOPS_AGE_KEY_FILE={bob.file}",
        str(tmp_path / "xdg-config" / "sops" / "age" / "keys.txt"),
    ]
    assert "AGE-SECRET-KEY" not in repr(found)


def test_the_environment_can_be_left_out(alice: AgeKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY", alice.identity)
    encrypted = encrypt_document("a: 1\n", "yaml", [alice.recipient])
    with pytest.raises(SecretsError, match="no age identity matches"):
        decrypt_document(encrypted, "yaml", load_identities(environment=False))
    assert decrypt_document(encrypted, "yaml", load_identities()) == "a: 1\n"


def test_a_missing_key_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "nope.txt"))
    with pytest.raises(SecretsError, match="cannot read age identities from SOPS_AGE_KEY_FILE="):
        load_identities()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("AGE-PLUGIN-YUBIKEY-1QQQ", "plugin identities are not supported"),
        ("ssh-ed25519 AAAA", "not an age identity"),
    ],
)
def test_unsupported_identities(text: str, message: str) -> None:
    with pytest.raises(SecretsError, match=message):
        load_identities([text], environment=False)


@pytest.mark.parametrize(
    "recipient", ["ssh-ed25519 AAAAC3Nza", "age1notbech32", "age1yubikey1qgg2x"]
)
def test_unsupported_recipients(recipient: str) -> None:
    with pytest.raises(SecretsError, match="age"):
        encrypt_document("a: 1\n", "yaml", [recipient])
