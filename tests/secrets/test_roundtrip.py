"""Encrypting then decrypting gives back exactly what went in, for YAML and JSON alike."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from tests.secrets.conftest import AgeKey
from tests.secrets.strategies import documents, typed
from tether.errors import SecretsError
from tether.render._yaml import load_yaml as render_load_yaml
from tether.secrets import (
    EditSession,
    EncryptionRules,
    decrypt_document,
    decrypt_tree,
    decrypt_trees,
    encrypt_document,
    is_encrypted,
    key_changes,
    recipients_of,
    rotate_document,
    update_keys,
)
from tether.secrets._json import dump_json, load_json
from tether.secrets._tree import from_plain, to_plain
from tether.secrets._yaml import dump_yaml, load_yaml

ENC = re.compile(r"ENC\[AES256_GCM,[^\]]*\]")
FIXTURES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def yaml_text(data: dict[str, Any]) -> str:
    return dump_yaml([from_plain(data)])


def read_yaml(text: str) -> Any:
    return to_plain(load_yaml(text, "t")[0])


@FIXTURES
@given(documents())
def test_yaml_documents_round_trip(alice: AgeKey, data: dict[str, Any]) -> None:
    encrypted = encrypt_document(yaml_text(data), "yaml", [alice.recipient])
    decrypted = decrypt_document(encrypted, "yaml", alice.identities)
    assert typed(read_yaml(decrypted)) == typed(data)


@FIXTURES
@given(documents(json=True))
def test_json_documents_round_trip(alice: AgeKey, data: dict[str, Any]) -> None:
    encrypted = encrypt_document(json.dumps(data), "json", [alice.recipient])
    assert json.loads(encrypted)["sops"]["age"][0]["recipient"] == alice.recipient
    decrypted = decrypt_document(encrypted, "json", alice.identities)
    assert typed(json.loads(decrypted)) == typed(data)


@FIXTURES
@given(documents())
def test_decrypt_tree_takes_parsed_documents(alice: AgeKey, data: dict[str, Any]) -> None:
    encrypted = read_yaml(encrypt_document(yaml_text(data), "yaml", [alice.recipient]))
    assert is_encrypted(encrypted)
    assert typed(decrypt_tree(encrypted, alice.identities)) == typed(data)


def test_every_value_type_is_encrypted_and_only_keys_stay_readable(alice: AgeKey) -> None:
    text = (
        "string: hunter2\nunicode: 'pässwörd ✓'\nempty: ''\nint: 42\nfloat: 2.5\nbool: true\n"
        "nothing: null\nlist:\n  - a\n  - {nested: [1, {deep: x}]}\n"
    )
    encrypted = encrypt_document(text, "yaml", [alice.recipient])
    body = encrypted.split("\nsops:")[0]
    readable = ENC.sub("ENC", body)
    for secret in ("hunter2", "pässwörd", "42", "2.5", "true", "nested: 1", "deep: x"):
        assert secret not in readable
    assert 'empty: ""' in readable and "nothing: null" in readable
    types = re.findall(r"type:(\w+)\]", body)
    assert sorted(set(types)) == ["bool", "float", "int", "str"]
    assert decrypt_document(encrypted, "yaml", alice.identities) == yaml_text(read_yaml(text))


def test_every_recipient_can_decrypt_on_its_own(alice: AgeKey, bob: AgeKey) -> None:
    encrypted = encrypt_document("a: secret\n", "yaml", [f"{alice.recipient},{bob.recipient}"])
    assert recipients_of(encrypted, "yaml") == [alice.recipient, bob.recipient]
    for key in (alice, bob):
        assert decrypt_document(encrypted, "yaml", key.identities) == "a: secret\n"


def test_multi_document_yaml_shares_one_data_key_and_one_mac(alice: AgeKey) -> None:
    encrypted = encrypt_document("a: 1\n---\nb: 2\n", "yaml", [alice.recipient])
    parts = encrypted.split("\n---\n")
    assert len(parts) == 2 and all("\nsops:\n" in part for part in parts)
    assert decrypt_document(encrypted, "yaml", alice.identities) == "a: 1\n---\nb: 2\n"
    parsed = [to_plain(d) for d in load_yaml(encrypted, "t")]
    assert decrypt_trees(parsed, alice.identities) == [{"a": 1}, {"b": 2}]
    with pytest.raises(SecretsError, match="MAC mismatch"):
        decrypt_tree(parsed[0], alice.identities)


@pytest.mark.parametrize(
    ("rules", "clear", "hidden"),
    [
        (EncryptionRules(), ["user_unencrypted: admin"], ["password"]),
        (EncryptionRules(unencrypted_suffix="_clear"), ["user_clear: admin"], ["password"]),
        (EncryptionRules(encrypted_suffix="word"), ["user_unencrypted: admin"], ["password"]),
        (EncryptionRules(encrypted_regex="^pass"), ["user_unencrypted: admin"], ["password"]),
        (EncryptionRules(unencrypted_regex="^user"), ["user_unencrypted: admin"], ["password"]),
        (
            EncryptionRules(encrypted_regex="^nested$", mac_only_encrypted=True),
            ["user_unencrypted: admin", "password: hunter2"],
            ["inner"],
        ),
    ],
)
def test_encryption_rules_select_values(
    alice: AgeKey, rules: EncryptionRules, clear: list[str], hidden: list[str]
) -> None:
    text = "user_unencrypted: admin\npassword: hunter2\nnested:\n    inner: value\n"
    if rules.unencrypted_suffix == "_clear":
        text = text.replace("user_unencrypted", "user_clear")
    encrypted = encrypt_document(text, "yaml", [alice.recipient], rules)
    body = encrypted.split("\nsops:")[0]
    for line in clear:
        assert line in body
    for key in hidden:
        assert re.search(rf"{key}: ENC\[", body)
    assert decrypt_document(encrypted, "yaml", alice.identities) == text


def test_comments_are_encrypted_and_come_back(alice: AgeKey) -> None:
    text = "# who owns this\npassword: hunter2 # rotate monthly\nlist:\n    # first\n    - a\n"
    encrypted = encrypt_document(text, "yaml", [alice.recipient])
    assert "owns" not in encrypted and "monthly" not in encrypted and "first" not in encrypted
    assert encrypted.startswith("#ENC[AES256_GCM,")
    assert decrypt_document(encrypted, "yaml", alice.identities) == text


def test_an_already_encrypted_file_is_not_encrypted_again(alice: AgeKey) -> None:
    encrypted = encrypt_document("a: 1\n", "yaml", [alice.recipient])
    with pytest.raises(SecretsError, match="already encrypted"):
        encrypt_document(encrypted, "yaml", [alice.recipient])


def test_edit_keeps_the_data_key_and_the_ciphertext_of_unchanged_values(alice: AgeKey) -> None:
    original = encrypt_document("a: one\nb: two\nc: [x, x]\n", "yaml", [alice.recipient])
    session = EditSession.open(original, "yaml", alice.identities, source="s.yaml")
    assert session.plaintext == "a: one\nb: two\nc:\n    - x\n    - x\n"
    edited = session.encrypt(session.plaintext.replace("two", "TWO"))
    before, after = ENC.findall(original), ENC.findall(edited)
    assert before[0] == after[0]  # a: unchanged
    assert before[1] != after[1]  # b: changed
    assert after[2] != after[3]  # equal values in one file never share an IV
    assert (
        original.split("recipient:")[0].split("age:")[1]
        == edited.split("recipient:")[0].split("age:")[1]
    )  # the same wrapped data key
    assert decrypt_document(edited, "yaml", alice.identities).startswith("a: one\nb: TWO\n")


def test_rotate_changes_the_data_key_and_recipients(alice: AgeKey, bob: AgeKey) -> None:
    original = encrypt_document("a: secret\n", "yaml", [alice.recipient])
    rotated = rotate_document(
        original,
        "yaml",
        alice.identities,
        add_recipients=[bob.recipient],
        remove_recipients=[alice.recipient],
    )
    assert recipients_of(rotated, "yaml") == [bob.recipient]
    assert ENC.findall(rotated)[0] != ENC.findall(original)[0]
    assert decrypt_document(rotated, "yaml", bob.identities) == "a: secret\n"
    with pytest.raises(SecretsError, match="no age identity matches"):
        decrypt_document(rotated, "yaml", alice.identities)


def test_update_keys_rewraps_the_same_data_key(alice: AgeKey, bob: AgeKey) -> None:
    original = encrypt_document("a: secret\n", "yaml", [alice.recipient])
    changes = key_changes(original, "yaml", [bob.recipient], source="s.yaml")
    assert changes.added == (bob.recipient,) and changes.removed == (alice.recipient,)
    updated = update_keys(original, "yaml", alice.identities, [bob.recipient])
    assert ENC.findall(updated) == ENC.findall(original)  # values and MAC untouched
    assert decrypt_document(updated, "yaml", bob.identities) == "a: secret\n"
    assert not key_changes(updated, "yaml", [bob.recipient], source="s.yaml")


def test_json_keeps_key_order_and_number_types(alice: AgeKey) -> None:
    text = '{"z": 1, "a": 1.0, "m": [true, null, "x"], "big": 123456789012345678901}'
    decrypted = decrypt_document(
        encrypt_document(text, "json", [alice.recipient]), "json", alice.identities
    )
    assert decrypted == dump_json(load_json(text, "t"))
    assert list(json.loads(decrypted)) == ["z", "a", "m", "big"]
    assert typed(json.loads(decrypted)["big"]) == ("float", "1.2345678901234568e+20")


def with_pgp_key(encrypted: str) -> str:
    """The file as if sops had also wrapped its data key for a PGP key."""
    pgp = (
        '    pgp:\n        - created_at: "2024-01-01T00:00:00Z"\n'
        "          enc: PGP-WRAPPED-KEY\n          fp: ABCDEF0123456789\n"
    )
    return encrypted.replace("    lastmodified:", pgp + "    lastmodified:")


def test_keys_of_other_types_are_kept_by_edit_and_block_rotation(alice: AgeKey) -> None:
    encrypted = with_pgp_key(encrypt_document("a: secret\n", "yaml", [alice.recipient]))
    session = EditSession.open(encrypted, "yaml", alice.identities, source="s.yaml")
    edited = session.encrypt("a: changed\n")
    assert "fp: ABCDEF0123456789" in edited and "enc: PGP-WRAPPED-KEY" in edited
    assert edited.index("    age:") < edited.index("    pgp:")  # sops' sorted key order
    with pytest.raises(SecretsError, match="also wrapped for pgp keys"):
        rotate_document(encrypted, "yaml", alice.identities)
    changes = key_changes(encrypted, "yaml", [alice.recipient], source="s.yaml")
    assert changes.dropped_key_types == ("pgp",)
    assert "pgp:" not in update_keys(encrypted, "yaml", alice.identities, [alice.recipient])


def test_a_file_only_for_other_key_types_says_so(alice: AgeKey) -> None:
    encrypted = with_pgp_key(encrypt_document("a: secret\n", "yaml", [alice.recipient]))
    only_pgp = re.sub(r"    age:\n(        .*\n|            .*\n)+", "", encrypted)
    assert "age:" not in only_pgp
    with pytest.raises(SecretsError, match=r"not wrapped for any age recipient \(only pgp\)"):
        decrypt_document(only_pgp, "yaml", alice.identities)


def test_shamir_key_groups_are_refused(alice: AgeKey) -> None:
    encrypted = encrypt_document("a: secret\n", "yaml", [alice.recipient])
    groups = encrypted.replace("    age:\n", "    key_groups:\n        - age:\n", 1)
    groups = groups.replace("    lastmodified:", "        - age: []\n    lastmodified:")
    with pytest.raises(SecretsError, match="Shamir"):
        decrypt_document(groups, "yaml", alice.identities)


CLEAR_VALUES = {
    "flag": "on",
    "answer": "yes",
    "octal": "017",
    "thousand": "1_000",
    "clock": "12:30",
    "date": "2024-01-01",
    "equals": "=",
    "port": 8080,
    "ratio": 0.5,
    "enabled": True,
}


@pytest.mark.parametrize("loader", ["pyyaml", "render"])
def test_decrypt_tree_accepts_files_parsed_by_a_yaml_1_1_reader(alice: AgeKey, loader: str) -> None:
    """Tether (like sops) quotes every clear string a YAML 1.1 reader would read differently,
    so the manifests Tether's render piece parses still pass the MAC check."""
    rules = EncryptionRules(encrypted_regex="^stringData$")
    data = {"metadata": CLEAR_VALUES, "stringData": {"password": "hunter2"}}
    encrypted = encrypt_document(yaml_text(data), "yaml", [alice.recipient], rules)
    if loader == "pyyaml":
        parsed = yaml.safe_load(encrypted)
    else:
        parsed = render_load_yaml(encrypted)[0].data
    assert parsed["metadata"] == CLEAR_VALUES
    assert decrypt_tree(parsed, alice.identities) == data
