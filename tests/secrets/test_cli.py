"""``tether secrets …`` run in-process: keygen, encrypt, decrypt, edit, rotate, updatekeys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.secrets.conftest import AgeKey, make_key
from tether.cli.main import app
from tether.secrets import decrypt_document, load_identities, recipients_of

MANIFEST = """apiVersion: v1
kind: Secret
metadata:
    name: db
stringData:
    username: app
    password: hunter2
"""


def run(*args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(app, ["secrets", *args], input=stdin, env={"COLUMNS": "200"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def gitops(tmp_path: Path, alice: AgeKey, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose .sops.yaml encrypts Secrets for alice; alice's key is in the env."""
    root = tmp_path / "gitops"
    write(
        root / ".sops.yaml",
        f"creation_rules:\n  - path_regex: secret\\.yaml$\n"
        f"    encrypted_regex: ^(data|stringData)$\n    age: {alice.recipient}\n",
    )
    write(root / "apps" / "secret.yaml", MANIFEST)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(alice.file))
    return root


def encrypted_file(gitops: Path) -> Path:
    path = gitops / "apps" / "secret.yaml"
    assert run("encrypt", "-i", str(path)).exit_code == 0
    return path


@pytest.mark.parametrize(
    "command", ["keygen", "encrypt", "decrypt", "edit", "rotate", "updatekeys"]
)
def test_every_command_has_help_with_examples(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout


def test_keygen_writes_a_private_identity_file(tmp_path: Path) -> None:
    target = tmp_path / "keys" / "cluster.agekey"
    result = run("keygen", "-o", str(target))
    assert result.exit_code == 0
    recipient = result.stdout.strip()
    assert recipient.startswith("age1")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert load_identities([target.read_text()], environment=False).recipients == (recipient,)
    assert f"# public key: {recipient}" in target.read_text()

    again = run("keygen", "-o", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_keygen_defaults_to_where_sops_looks(tmp_path: Path) -> None:
    result = run("keygen")
    assert result.exit_code == 0
    default = tmp_path / "xdg-config" / "sops" / "age" / "keys.txt"
    assert load_identities().recipients == (result.stdout.strip(),)
    assert default.is_file()


def test_encrypt_uses_the_creation_rule_and_prints(gitops: Path, alice: AgeKey) -> None:
    path = gitops / "apps" / "secret.yaml"
    result = run("encrypt", str(path))
    assert result.exit_code == 0
    assert "name: db" in result.stdout and "hunter2" not in result.stdout
    assert "creation_rules[0]" in result.stderr
    assert path.read_text() == MANIFEST  # not in place
    assert decrypt_document(result.stdout, "yaml", alice.identities) == MANIFEST


def test_encrypt_in_place_with_explicit_recipients(
    tmp_path: Path, alice: AgeKey, bob: AgeKey
) -> None:
    path = write(tmp_path / "config.json", '{"token": "abc", "port": 8080}')
    os.chmod(path, 0o640)
    result = run("encrypt", "-i", "--age", alice.recipient, "--age", bob.recipient, str(path))
    assert result.exit_code == 0 and result.stdout == ""
    assert recipients_of(path.read_text(), "json") == [alice.recipient, bob.recipient]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_encrypt_without_recipients_fails(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.yaml", MANIFEST)
    result = run("encrypt", str(path))
    assert result.exit_code == 2 and "no .sops.yaml found" in result.stderr


def test_encrypt_an_unknown_format_fails(tmp_path: Path, alice: AgeKey) -> None:
    path = write(tmp_path / "secret.env", "A=b\n")
    result = run("encrypt", "--age", alice.recipient, str(path))
    assert result.exit_code == 2 and "cannot tell the format" in result.stderr


def test_decrypt_prints_extracts_and_writes_in_place(gitops: Path) -> None:
    path = encrypted_file(gitops)
    result = run("decrypt", str(path))
    assert result.exit_code == 0 and result.stdout == MANIFEST

    extracted = run("decrypt", "--extract", '["stringData"]["password"]', str(path))
    assert extracted.exit_code == 0 and extracted.stdout == "hunter2"
    sub = run("decrypt", "--extract", '["stringData"]', str(path))
    assert sub.stdout == "username: app\npassword: hunter2\n"
    missing = run("decrypt", "--extract", '["nope"]', str(path))
    assert missing.exit_code == 2 and "there is no key 'nope'" in missing.stderr

    assert run("decrypt", "-i", str(path)).exit_code == 0
    assert path.read_text() == MANIFEST


def test_decrypt_with_the_wrong_key_fails_without_secrets(
    gitops: Path, bob: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = encrypted_file(gitops)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(bob.file))
    result = run("decrypt", str(path))
    assert result.exit_code == 2
    assert "no age identity matches" in result.stderr and "hunter2" not in result.stderr
    assert bob.identity not in result.stderr


def editor(tmp_path: Path, name: str, action: str) -> tuple[str, Path]:
    """A shell script usable as $EDITOR: it records the file it got, its mode and its
    directory's mode, then does ``action`` on it."""
    record = tmp_path / f"{name}.record"
    script = write(
        tmp_path / f"{name}.sh",
        "#!/bin/sh\n"
        f'printf "%s\\n" "$1" > "{record}"\n'
        f'stat -c %a "$1" >> "{record}"\n'
        f'stat -c %a "$(dirname "$1")" >> "{record}"\n'
        f"{action}\n",
    )
    script.chmod(0o755)
    return str(script), record


def recorded(record: Path) -> tuple[Path, str, str]:
    path, file_mode, dir_mode = record.read_text().splitlines()
    return Path(path), file_mode, dir_mode


def test_edit_re_encrypts_what_the_editor_changed(
    gitops: Path, tmp_path: Path, alice: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = encrypted_file(gitops)
    before = path.read_text()
    script, record = editor(tmp_path, "change", "sed -i 's/hunter2/correct-horse/' \"$1\"")
    monkeypatch.setenv("EDITOR", script)
    result = run("edit", str(path))
    assert result.exit_code == 0, result.stderr
    plaintext, file_mode, dir_mode = recorded(record)
    assert (file_mode, dir_mode) == ("600", "700")
    assert not plaintext.exists() and not plaintext.parent.exists()
    after = path.read_text()
    assert "correct-horse" not in after
    decrypted = decrypt_document(after, "yaml", alice.identities)
    assert decrypted == MANIFEST.replace("hunter2", "correct-horse")
    unchanged = next(x for x in before.splitlines() if "username:" in x)
    assert unchanged in after.splitlines()  # same data key, same ciphertext for username


def test_edit_removes_the_plaintext_when_the_editor_fails(
    gitops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = encrypted_file(gitops)
    before = path.read_text()
    script, record = editor(tmp_path, "fail", 'echo scribble >> "$1"; exit 3')
    monkeypatch.setenv("EDITOR", script)
    result = run("edit", str(path))
    assert result.exit_code == 2
    assert "exited with status 3" in result.stderr and "left unchanged" in result.stderr
    plaintext, _, _ = recorded(record)
    assert not plaintext.exists() and not plaintext.parent.exists()
    assert path.read_text() == before


def test_edit_leaves_the_file_alone_when_nothing_changed(
    gitops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = encrypted_file(gitops)
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    script, record = editor(tmp_path, "noop", "true")
    monkeypatch.setenv("EDITOR", script)
    result = run("edit", str(path))
    assert result.exit_code == 0 and "has not changed" in result.stderr
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    plaintext, _, _ = recorded(record)
    assert not plaintext.parent.exists()


def test_edit_refuses_invalid_yaml_and_keeps_the_file(
    gitops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = encrypted_file(gitops)
    before = path.read_text()
    script, record = editor(tmp_path, "broken", "echo 'bad: [' >> \"$1\"")
    monkeypatch.setenv("EDITOR", script)
    result = run("edit", str(path), stdin="")
    assert result.exit_code == 2 and "not valid YAML" in result.stderr
    assert path.read_text() == before
    assert not recorded(record)[0].parent.exists()


def test_edit_creates_a_new_file_from_the_creation_rule(
    gitops: Path, tmp_path: Path, alice: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = gitops / "apps" / "new-secret.yaml"
    script, _ = editor(tmp_path, "create", "printf 'stringData:\\n    key: value\\n' > \"$1\"")
    monkeypatch.setenv("EDITOR", script)
    assert run("edit", str(path)).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "value" not in text.split("sops:")[0]
    assert decrypt_document(text, "yaml", alice.identities) == "stringData:\n    key: value\n"


def test_rotate_changes_the_data_key(gitops: Path, alice: AgeKey, bob: AgeKey) -> None:
    path = encrypted_file(gitops)
    before = path.read_text()
    printed = run("rotate", str(path))
    assert printed.exit_code == 0 and path.read_text() == before
    result = run("rotate", "-i", "--add-age", bob.recipient, str(path))
    assert result.exit_code == 0
    after = path.read_text()
    assert after != before
    assert recipients_of(after, "yaml") == [alice.recipient, bob.recipient]
    assert decrypt_document(after, "yaml", bob.identities) == MANIFEST


def test_updatekeys_follows_the_changed_config(
    gitops: Path, tmp_path: Path, alice: AgeKey, bob: AgeKey
) -> None:
    path = encrypted_file(gitops)
    up_to_date = run("updatekeys", str(path))
    assert up_to_date.exit_code == 0 and "already up to date" in up_to_date.stderr

    config = gitops / ".sops.yaml"
    config.write_text(config.read_text().replace(alice.recipient, bob.recipient))
    before = path.read_text()
    declined = run("updatekeys", str(path), stdin="n\n")
    assert declined.exit_code == 0 and path.read_text() == before
    assert f"+ {bob.recipient}" in declined.stderr and f"- {alice.recipient}" in declined.stderr

    accepted = run("updatekeys", "-y", str(path))
    assert accepted.exit_code == 0, accepted.stderr
    after = path.read_text()
    assert recipients_of(after, "yaml") == [bob.recipient]
    assert decrypt_document(after, "yaml", bob.identities) == MANIFEST
    assert after.split("lastmodified:")[1] == before.split("lastmodified:")[1]


def test_updatekeys_needs_a_key_that_can_open_the_file(
    gitops: Path, tmp_path: Path, alice: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = encrypted_file(gitops)
    before = path.read_text()
    stranger = make_key(tmp_path / "other", "stranger")
    config = gitops / ".sops.yaml"
    config.write_text(config.read_text().replace(alice.recipient, stranger.recipient))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(stranger.file))
    result = run("updatekeys", "-y", str(path))
    assert result.exit_code == 2 and "no age identity matches" in result.stderr
    assert path.read_text() == before
