"""A modified file, a wrong key or a broken MAC fails loudly, and never shows a secret."""

from __future__ import annotations

import base64
import re

import pytest

from tests.secrets.conftest import AgeKey
from tether.errors import SecretsError, TetherError
from tether.secrets import EncryptionRules, decrypt_document, encrypt_document, load_identities

SECRET = "s3cr3t-value-do-not-print"
MANIFEST = f"""apiVersion: v1
kind: Secret
metadata:
    name: db
    namespace: prod
type: Opaque
stringData:
    password: {SECRET}
    user: admin
"""
K8S = EncryptionRules(encrypted_regex="^(data|stringData)$")


@pytest.fixture
def encrypted(alice: AgeKey) -> str:
    return encrypt_document(MANIFEST, "yaml", [alice.recipient], K8S, source="secret.yaml")


def failure(text: str, key: AgeKey, fmt: str = "yaml") -> str:
    with pytest.raises(SecretsError) as caught:
        decrypt_document(text, fmt, key.identities, source="apps/db/secret.yaml")
    message = str(caught.value)
    assert isinstance(caught.value, TetherError)
    assert SECRET not in message
    assert key.identity not in message and "AGE-SECRET-KEY" not in message
    return message


def flip(ciphertext: str) -> str:
    """The same ENC[…] with one bit of its data changed."""
    data = re.search(r"data:([^,]+),", ciphertext)
    assert data is not None
    raw = bytearray(base64.b64decode(data.group(1)))
    raw[0] ^= 1
    return ciphertext.replace(data.group(1), base64.b64encode(bytes(raw)).decode())


def test_a_changed_ciphertext_names_the_key_path(encrypted: str, alice: AgeKey) -> None:
    line = next(x for x in encrypted.splitlines() if x.strip().startswith("password:"))
    message = failure(encrypted.replace(line, flip(line)), alice)
    assert "apps/db/secret.yaml: cannot decrypt stringData.password" in message
    assert "authentication failed" in message


def test_a_ciphertext_moved_to_another_key_does_not_decrypt(encrypted: str, alice: AgeKey) -> None:
    lines = encrypted.splitlines()
    password = next(i for i, x in enumerate(lines) if x.strip().startswith("password:"))
    user = next(i for i, x in enumerate(lines) if x.strip().startswith("user:"))
    lines[password], lines[user] = (
        lines[password].replace("password:", "user:"),
        lines[user].replace("user:", "password:"),
    )
    message = failure("\n".join(lines) + "\n", alice)
    assert "cannot decrypt stringData" in message


def test_a_changed_clear_value_fails_the_mac(encrypted: str, alice: AgeKey) -> None:
    message = failure(encrypted.replace("namespace: prod", "namespace: dev"), alice)
    assert "MAC mismatch for apps/db/secret.yaml" in message
    assert "modified after encryption or the MAC is corrupt" in message


def test_a_removed_value_fails_the_mac(encrypted: str, alice: AgeKey) -> None:
    lines = [x for x in encrypted.splitlines() if not x.strip().startswith("user:")]
    assert "MAC mismatch" in failure("\n".join(lines) + "\n", alice)


def test_a_changed_mac_fails(encrypted: str, alice: AgeKey) -> None:
    line = next(x for x in encrypted.splitlines() if x.strip().startswith("mac:"))
    message = failure(encrypted.replace(line, flip(line)), alice)
    assert "MAC check failed for apps/db/secret.yaml" in message


def test_a_changed_lastmodified_fails_the_mac(encrypted: str, alice: AgeKey) -> None:
    tampered = re.sub(r'lastmodified: "[^"]+"', 'lastmodified: "2001-01-01T00:00:00Z"', encrypted)
    assert "MAC check failed" in failure(tampered, alice)


def test_a_missing_mac_fails(encrypted: str, alice: AgeKey) -> None:
    tampered = re.sub(r"    mac: .*", '    mac: ""', encrypted)
    assert "has no MAC" in failure(tampered, alice)


def test_a_value_added_in_clear_is_refused(encrypted: str, alice: AgeKey) -> None:
    tampered = encrypted.replace("    user:", f"    token: {SECRET}\n    user:")
    message = failure(tampered, alice)
    assert "stringData.token is not encrypted although the file's rules say it should be" in message


def test_the_wrong_key_lists_recipients_and_where_keys_were_looked_for(
    encrypted: str, alice: AgeKey, bob: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(bob.file))
    identities = load_identities([bob.identity], source="Secret tether-system/sops-age")
    with pytest.raises(SecretsError) as caught:
        decrypt_document(encrypted, "yaml", identities, source="apps/db/secret.yaml")
    message = str(caught.value)
    assert "cannot decrypt apps/db/secret.yaml: no age identity matches its recipients" in message
    assert alice.recipient in message and bob.recipient in message
    assert "Secret tether-system/sops-age (1 identity)" in message
    assert f"SOPS_AGE_KEY_FILE={bob.file} (1 identity)" in message
    assert "SOPS_AGE_KEY (not set)" in message
    assert bob.identity not in message and alice.identity not in message


def test_no_identities_at_all(encrypted: str) -> None:
    with pytest.raises(SecretsError) as caught:
        decrypt_document(encrypted, "yaml", load_identities(), source="s.yaml")
    assert "Identities available (public keys): none" in str(caught.value)
    assert "keys.txt (not found)" in str(caught.value)


def test_a_corrupt_wrapped_data_key(encrypted: str, alice: AgeKey) -> None:
    tampered = re.sub(r"(-----BEGIN AGE ENCRYPTED FILE-----\n\s+)\S", r"\1A", encrypted)
    assert "no age identity matches" in failure(tampered, alice)


def test_a_plaintext_file_is_not_mistaken_for_an_encrypted_one(alice: AgeKey) -> None:
    message = failure(MANIFEST, alice)
    assert "is not encrypted with SOPS: it has no top-level 'sops' key" in message


def test_wrong_format(encrypted: str, alice: AgeKey) -> None:
    assert "not valid JSON" in failure(encrypted, alice, fmt="json")


def test_a_malformed_identity_is_reported_by_line_without_its_text() -> None:
    with pytest.raises(SecretsError) as caught:
        load_identities(["# comment\nAGE-SECRET-KEY-1NOTAVALIDKEY\n"], source="Secret x")
    assert "Secret x, line 2: not a valid age identity" in str(caught.value)
    assert "NOTAVALIDKEY" not in str(caught.value)
