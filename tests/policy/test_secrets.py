"""The secret scanner: secrets in many shapes are found at their line, look-alikes are not, and
no finding ever carries the secret itself."""

from __future__ import annotations

import pytest

from tether.policy import allowlist
from tether.policy.config import AllowEntry
from tether.policy.secrets import credential_key, random_looking, scan

# Test values built at run time so the repository itself holds no token-shaped strings.
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" * 2 + "_" + "x9Y8z7W6v5" * 6
AWS = "AKIA" + "Z7Q3RYX2WJ5KLM4P"
SLACK = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
GOOGLE = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
    + ".c2lnbmF0dXJlLW5vdC1yZWFsLWF0LWFsbC0xMjM0"
)
RANDOM_40 = "q7Vt2LmX9pRk4Zs8BnW3yHc6JdF1gTa5" + "Ue0Io2Kl"
PRIVATE_PEM_HEAD = "-----BEGIN " + "RSA PRIVATE KEY-----"
PRIVATE_PEM_TAIL = "-----END " + "RSA PRIVATE KEY-----"
OPENSSH_HEAD = "-----BEGIN " + "OPENSSH PRIVATE KEY-----"
OPENSSH_TAIL = "-----END " + "OPENSSH PRIVATE KEY-----"
AGE_IDENTITY = (
    "AGE-SECRET-KEY-1" + "QYZ8J5X4K7M2N9P3R6T0W8V5U4S2Q7L9H3G6F1D4C8B5A2Z7X3" + "LKJHGFDS"
)
# base64 of "-----BEGIN PRIVATE KEY-----\nMIIEvQ..."
B64_PRIVATE = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2UUlCQURBTkJna3Foa2lHOXcwQkFRRUZBQVND"
# base64 of "-----BEGIN CERTIFICATE-----\nMIIC..."
B64_CERT = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUMvVENDQWVXZ0F3SUJBZ0lKQU1oNXFjVjNsWmxG"


def secret(data: str, kind: str = "stringData") -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n{kind}:\n{data}"


def configmap(data: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n{data}"


def deployment_env(entries: str) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n"
        "    spec:\n      containers:\n        - name: web\n          image: web:1.0\n"
        f"          env:\n{entries}"
    )


FOUND = [
    # (id, path, text, rule, line)
    ("secret-stringdata", "s.yaml", secret("  password: hunter2\n"), "secret-cleartext", 6),
    (
        "secret-data-base64",
        "s.yaml",
        secret("  password: aHVudGVyMg==\n", "data"),
        "secret-cleartext",
        6,
    ),
    (
        "secret-json",
        "s.json",
        '{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},\n "data": {"k": "dg=="}}',
        "secret-cleartext",
        2,
    ),
    (
        "pem-in-configmap",
        "c.yaml",
        configmap(
            f"  key.pem: |\n    {PRIVATE_PEM_HEAD}\n    MIIEowIBAAKCAQEAsomething\n    {PRIVATE_PEM_TAIL}\n"
        ),
        "secret-private-key",
        7,
    ),
    (
        "openssh-key-file",
        "id_ed25519",
        f"{OPENSSH_HEAD}\nb3BlbnNzaC1rZXktdjEAAAAA\n{OPENSSH_TAIL}\n",
        "secret-private-key",
        1,
    ),
    (
        "pem-escaped-json",
        "k.json",
        '{"key": "' + PRIVATE_PEM_HEAD + '\\nMIIEow\\n"}',
        "secret-private-key",
        1,
    ),
    ("base64-pem", "c.yaml", configmap(f"  tls.key: {B64_PRIVATE}\n"), "secret-private-key", 6),
    ("age-identity", "keys.txt", f"# created: 2024\n{AGE_IDENTITY}\n", "secret-private-key", 2),
    ("github", "c.yaml", configmap(f"  token-file: {GITHUB}\n"), "secret-token", 6),
    ("github-pat", "README.md", f"use {GITHUB_PAT} to log in\n", "secret-token", 1),
    ("aws", "c.yaml", configmap(f"  key: {AWS}\n"), "secret-token", 6),
    ("slack", "notes.txt", f"\n\nwebhook {SLACK}\n", "secret-token", 3),
    ("google", "c.yaml", configmap(f"  maps: {GOOGLE}\n"), "secret-token", 6),
    ("jwt", "c.yaml", configmap(f"  session: {JWT}\n"), "secret-token", 6),
    ("password-key", "values.yaml", "db:\n  password: s3cr3t-Value\n", "secret-generic", 2),
    ("api-token-camel", "c.yaml", configmap("  apiToken: abcdef123456\n"), "secret-generic", 6),
    (
        "env-entry",
        "d.yaml",
        deployment_env("            - name: DB_PASSWORD\n              value: hunter22\n"),
        "secret-generic",
        13,
    ),
    (
        "args-flag",
        "d.yaml",
        deployment_env("            - name: X\n              value: --db-password=hunter22\n"),
        "secret-generic",
        13,
    ),
    (
        "dotenv",
        "app.env",
        "LOG_LEVEL=debug\nAWS_SECRET_ACCESS_KEY=abcdefghijklmnop\n",
        "secret-generic",
        2,
    ),
    ("dotenv-export", ".env", "export CLIENT_SECRET='abc123def'\n", "secret-generic", 1),
    (
        "generator-literal",
        "kustomization.yaml",
        "secretGenerator:\n  - name: db\n    literals:\n      - password=hunter22\n",
        "secret-generic",
        4,
    ),
    (
        "config-block",
        "c.yaml",
        configmap("  app.ini: |\n    [db]\n    password = hunter22\n"),
        "secret-generic",
        8,
    ),
    (
        "url-credentials",
        "c.yaml",
        configmap("  dsn: postgres://admin:Sup3rS3cret@db:5432/app\n"),
        "secret-generic",
        6,
    ),
    ("high-entropy", "c.yaml", configmap(f"  blob: {RANDOM_40}\n"), "secret-high-entropy", 6),
    (
        "high-entropy-hex",
        "c.yaml",
        configmap("  seed: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"),
        "secret-high-entropy",
        6,
    ),
]


@pytest.mark.parametrize(
    ("path", "text", "rule", "line"), [c[1:] for c in FOUND], ids=[c[0] for c in FOUND]
)
def test_secrets_are_found_at_their_line(path: str, text: str, rule: str, line: int) -> None:
    findings = scan(path, text)
    assert [(f.rule, f.line) for f in findings] == [(rule, line)], findings


SOPS_FILE = """apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: ENC[AES256_GCM,data:Tr7o1A==,iv:8Yx3LkZ9dQ2wRt5uVb6nMa==,tag:p0Qw3eRt5yUi7oPa9sDf1g==,type:str]
  note: left-in-clear
sops:
  age:
    - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBRMlNWbXl6Ukt6TjNmVG9a
        Q0hqb2xGaXhXdjJ0MnVTWjg3NWRnRGpLMUJzCnFBQmpjSmtuN3R4M2gzZWNuUXpn
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2024-05-01T10:00:00Z"
  mac: ENC[AES256_GCM,data:9pZ2kXw4Ls7Yq1Rb3Nf6Tg==,iv:Qk7Lm2Np4Rs6Tu8Vw0Xy1A==,tag:Zz9Yy8Xx7Ww6Vv5Uu4Tt3Q==,type:str]
  unencrypted_suffix: _unencrypted
  version: 3.9.0
"""

SOPS_DOTENV = (
    "DB_PASSWORD=ENC[AES256_GCM,data:Tr7o1A==,iv:8Yx3LkZ9dQ2wRt5uVb6nMa==,tag:p0Qw3eRt5yUi7oPa9sDf1g==,type:str]\n"
    "sops_age__list_0__map_recipient=age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"
    "sops_mac=ENC[AES256_GCM,data:9pZ2kXw4Ls7Yq1Rb3Nf6Tg==,iv:Qk7Lm2Np4Rs6Tu8Vw0Xy1A==,tag:Zz9Yy8Xx7Ww6Vv5Uu4Tt3Q==,type:str]\n"
    "sops_age__list_0__map_enc=-----BEGIN AGE ENCRYPTED FILE-----\\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBRMlNW\\n-----END AGE ENCRYPTED FILE-----\\n\n"
)

PUBLIC_PEM = """  pub.pem: |
    -----BEGIN PUBLIC KEY-----
    MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo
    4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u
    -----END PUBLIC KEY-----
  ca.crt: |
    -----BEGIN CERTIFICATE-----
    MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ
    RTESMBAGA1UEChMJQmFsdGltb3JlMRMwEQYDVQQLEwpDeWJlclRydXN0MSIwIAYD
    -----END CERTIFICATE-----
"""

NOT_FOUND = [
    ("sops-secret-file", "s.yaml", SOPS_FILE),
    ("sops-dotenv", "secrets.env", SOPS_DOTENV),
    (
        "sops-value-elsewhere",
        "c.yaml",
        configmap("  token: ENC[AES256_GCM,data:abc=,iv:def=,tag:ghi=,type:str]\n"),
    ),
    (
        "ssh-public-keys",
        "c.yaml",
        configmap(
            "  authorized_keys: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host\n"
            "  known_hosts: github.com ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEAq2A7hRGmdnm9tUDbO9IDSwBK6TbQa+PXYPCPy6rbTrTtw7PHkccKrpp0yVhp5HdEIcKr6pLlVDBfOLX9QUsyCOV0wzfjIJNlGEYsdlLJizHhbn2mUjvSAHQqZETYP81eFzLQNnPHt4EVVUh7VfDESU84KezmD5QlWpXLmvU31/yMf+Se8xhHTvKSCZIFImWwoG6mbUoWf9nzpIoaSjB+weqqUUmpaaasXVal72J+UX2B+2RPW3RcT0eOzQgqlJL3RKrTJvdsjE3JEAvGq3lGHSZXy28G3skua2SmVi/w4yCE6gbODqnTWlg7+wC604ydGXA8VJiS5ap43JXiUFFAaQ==\n"
        ),
    ),
    ("public-pem-and-certificate", "c.yaml", configmap(PUBLIC_PEM)),
    (
        "base64-certificate-cabundle",
        "w.yaml",
        "webhooks:\n  - name: x\n    clientConfig:\n      caBundle: " + B64_CERT + "\n",
    ),
    ("base64-certificate-anywhere", "c.yaml", configmap(f"  bundle: {B64_CERT}\n")),
    (
        "age-recipient",
        ".sops.yaml",
        "creation_rules:\n  - age: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n",
    ),
    (
        "age-recipient-visible",
        "s.yaml",
        "recipients:\n  - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n",
    ),
    (
        "checksum-annotation",
        "d.yaml",
        "metadata:\n  annotations:\n    checksum/config: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
    ),
    (
        "sha256-digest",
        "c.yaml",
        configmap(
            "  artifact: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
        ),
    ),
    (
        "image-digest",
        "d.yaml",
        "containers:\n  - name: web\n    image: ghcr.io/acme/web@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
    ),
    (
        "git-commit",
        "app.yaml",
        "source:\n  targetRevision: 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n",
    ),
    (
        "uuid",
        "c.yaml",
        configmap(
            "  tenant: 123e4567-e89b-12d3-a456-426614174000\n  id: 6F9619FF-8B86-D011-B42D-00C04FC964FF\n"
        ),
    ),
    (
        "placeholders",
        "c.yaml",
        configmap(
            '  password: "${DB_PASSWORD}"\n  token: "<your-token>"\n  apiKey: "{{ .Values.apiKey }}"\n'
            "  secret: changeme\n  client_secret: $(CLIENT_SECRET)\n  passphrase: ''\n"
        ),
    ),
    (
        "secret-references",
        "d.yaml",
        deployment_env(
            "            - name: DB_PASSWORD\n              valueFrom:\n                secretKeyRef:\n"
            "                  name: db\n                  key: password\n"
        ),
    ),
    (
        "booleans-and-names",
        "d.yaml",
        "spec:\n  automountServiceAccountToken: false\n  secretName: db-credentials\n"
        "  tokenFile: /var/run/secrets/token\n  passwordSecretRef: {name: x}\n",
    ),
    ("aws-documentation-example", "README.md", "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"),
    (
        "words-and-identifiers",
        "c.yaml",
        configmap(
            "  a: MyApplicationConfiguration2024\n  b: io.k8s.api.apps.v1.DeploymentSpec\n"
            "  c: app.kubernetes.io/managed-by\n  d: registry.example.com/team/app:1.2.3\n"
            "  e: web-7d9f8b6c5d-x2k4p\n  f: /usr/lib/x86_64-linux-gnu/libssl.so.3\n"
            "  g: ThisIsAVeryLongIdentifierWithoutDigits\n"
        ),
    ),
    (
        "sealed-secret",
        "sealed.yaml",
        "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\nspec:\n"
        f"  encryptedData:\n    password: AgB{RANDOM_40}{RANDOM_40}\n",
    ),
    ("empty-secret", "s.yaml", secret("  password: ''\n")),
    (
        "url-without-password",
        "c.yaml",
        configmap("  url: https://user@git.example.com/org/repo.git\n"),
    ),
    ("binary-file", "logo.png", "\x89PNG\x00\x00" + RANDOM_40),
]


@pytest.mark.parametrize(
    ("path", "text"), [c[1:] for c in NOT_FOUND], ids=[c[0] for c in NOT_FOUND]
)
def test_lookalikes_are_not_reported(path: str, text: str) -> None:
    assert scan(path, text) == []


def test_findings_never_carry_the_secret() -> None:
    values = [GITHUB, AWS, SLACK, GOOGLE, JWT, RANDOM_40, "hunter2", "s3cr3t-Value"]
    texts = [text for _, _, text, _, _ in FOUND]
    for _, path, text, _, _ in FOUND:
        for finding in scan(path, text):
            shown = " ".join(str(v) for v in finding.to_dict().values())
            assert not any(value in shown for value in values), finding
    assert texts


def test_fingerprints_survive_line_moves_and_differ_per_secret() -> None:
    before = scan("c.yaml", configmap(f"  token-file: {GITHUB}\n"))
    after = scan("c.yaml", "# a comment\n\n" + configmap(f"  token-file: {GITHUB}\n"))
    other = scan("c.yaml", configmap(f"  token-file: {GITHUB[:-1]}X\n"))
    assert before[0].line != after[0].line
    assert before[0].fingerprint == after[0].fingerprint
    assert before[0].fingerprint != other[0].fingerprint


def test_allowlist_by_fingerprint_and_by_path_and_rule() -> None:
    findings = scan("c.yaml", configmap(f"  blob: {RANDOM_40}\n  token-file: {GITHUB}\n"))
    assert {f.rule for f in findings} == {"secret-high-entropy", "secret-token"}
    entropy = next(f for f in findings if f.rule == "secret-high-entropy")
    kept, suppressed = allowlist.apply(
        findings, (AllowEntry("test fixture", fingerprint=entropy.fingerprint),)
    )
    assert [f.rule for f in kept] == ["secret-token"]
    assert suppressed[0].reason == "test fixture"
    kept, suppressed = allowlist.apply(
        findings, (AllowEntry("fixtures", path="*.yaml", rule="secret-token"),)
    )
    assert [f.rule for f in kept] == ["secret-high-entropy"]
    kept, _ = allowlist.apply(findings, (AllowEntry("elsewhere", path="apps/**"),))
    assert len(kept) == 2


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("apiToken", True),
        ("api-key", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("clientSecret", True),
        ("secretName", False),
        ("tokenFile", False),
        ("passwordSecretRef", False),
        ("key", False),
        ("automountServiceAccountToken", True),
    ],
)
def test_credential_keys(key: str, expected: bool) -> None:
    assert credential_key(key) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (RANDOM_40, True),
        ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", True),
        ("k8s9x2mq7vz4lw1r0p3t6y5n8b2c4d7f", True),
        ("MyApplicationConfiguration2024", False),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", False),
        ("0123456789abcdef", False),
        ("my-very-long-configuration-name-v2", False),
    ],
)
def test_randomness(text: str, expected: bool) -> None:
    assert random_looking(text) is expected
