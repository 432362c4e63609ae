""".sops.yaml creation rules: the nearest file above, the first matching rule wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.secrets.conftest import AgeKey
from tether.errors import SecretsError
from tether.secrets import EncryptionRules, find_config, find_creation_rule


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def gitops(tmp_path: Path, alice: AgeKey, bob: AgeKey) -> Path:
    root = tmp_path / "gitops"
    write(
        root / ".sops.yaml",
        f"""creation_rules:
  - path_regex: clusters/prod/.*\\.yaml$
    encrypted_regex: ^(data|stringData)$
    age: {bob.recipient}
  - path_regex: \\.json$
    key_groups:
      - age:
          - {alice.recipient}
          - {bob.recipient}
  - path_regex: clusters/.*
    age: >-
      {alice.recipient},
      {bob.recipient}
    mac_only_encrypted: true
""",
    )
    return root


def test_the_first_matching_rule_wins(gitops: Path, alice: AgeKey, bob: AgeKey) -> None:
    prod = find_creation_rule(gitops / "clusters/prod/db.yaml")
    assert prod.index == 0 and prod.recipients == (bob.recipient,)
    assert prod.rules == EncryptionRules(encrypted_regex="^(data|stringData)$")
    assert (
        str(prod) == f"{gitops / '.sops.yaml'} creation_rules[0] (path_regex {prod.path_regex!r})"
    )

    assert find_creation_rule(gitops / "clusters/prod/db.json").index == 1

    dev = find_creation_rule(gitops / "clusters/dev/db.yaml")
    assert dev.index == 2 and dev.recipients == (alice.recipient, bob.recipient)
    assert dev.rules == EncryptionRules(unencrypted_suffix="_unencrypted", mac_only_encrypted=True)


def test_the_nearest_config_above_the_file_is_used(gitops: Path, alice: AgeKey) -> None:
    nested = write(
        gitops / "clusters" / "prod" / ".sops.yaml",
        f"creation_rules:\n  - age: ['{alice.recipient}']\n",
    )
    assert find_config(gitops / "clusters/prod/db.yaml") == nested
    assert find_config(gitops / "clusters/dev/db.yaml") == gitops / ".sops.yaml"
    rule = find_creation_rule(gitops / "clusters/prod/deep/db.yaml")
    assert rule.config == nested and rule.recipients == (alice.recipient,)


def test_paths_are_matched_relative_to_the_config(
    gitops: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(gitops / "..")
    assert find_creation_rule(Path("gitops/clusters/prod/x.yaml")).index == 0


def test_no_matching_rule_is_an_error(gitops: Path) -> None:
    with pytest.raises(SecretsError) as caught:
        find_creation_rule(gitops / "apps/web.yaml")
    message = str(caught.value)
    assert f"no creation rule in {gitops / '.sops.yaml'} matches 'apps/web.yaml'" in message
    assert "'clusters/prod/.*\\\\.yaml$'" in message


def test_no_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match=r"no \.sops\.yaml found"):
        find_creation_rule(tmp_path / "lonely" / "secret.yaml")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("- pgp: ABCDEF\n", "uses pgp keys, which Tether cannot encrypt for"),
        ("- key_groups: [{age: [a]}, {age: [b]}]\n", "several key_groups"),
        ("- age: ''\n", "lists no age recipients"),
        ("- age: 'not-a-key'\n", "'not-a-key' is not an age recipient"),
        ("- path_regex: '('\n  age: x\n", "path_regex is not a valid regex"),
        ("- age: {R}\n  encrypted_regex: a\n  unencrypted_suffix: b\n", "use only one of"),
    ],
)
def test_invalid_rules(tmp_path: Path, alice: AgeKey, rule: str, message: str) -> None:
    write(tmp_path / ".sops.yaml", "creation_rules:\n" + rule.replace("{R}", alice.recipient))
    with pytest.raises(SecretsError, match=message.replace("(", r"\(")):
        find_creation_rule(tmp_path / "s.yaml")
