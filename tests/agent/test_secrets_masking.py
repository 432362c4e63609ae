"""SOPS-encrypted manifests at sync time, on the real control plane: decrypted in memory with
keys from a Kubernetes Secret, applied, and never shown. One sync, one diff and an agent run
with an alert receiver; then every output channel is searched for the plaintexts."""

from __future__ import annotations

import base64
import json

from tests.agent.conftest import apply_yaml, source_and_app, wait_for
from tests.agent.test_agent import Receiver
from tests.conftest import Cli, GitRepo, Kubectl
from tether.secrets import EncryptionRules, encrypt_document, generate_identity

PASSWORD = "correct-horse-battery-staple-42"
TOKEN = "tok_9f8e7d6c5b4a39281706"
NEW_PASSWORD = "rotated-password-value-77"
RULES = EncryptionRules(encrypted_regex="^(data|stringData)$")


def encrypted_files(repo: GitRepo, recipient: str, password: str) -> None:
    secret = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\nstringData:\n  password: {password}\n"
    config = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\ndata:\n  token: {TOKEN}\n  mode: fast\n"
    repo.write(
        "secret.yaml", encrypt_document(secret, "yaml", [recipient], RULES, source="secret.yaml")
    )
    repo.write(
        "config.yaml", encrypt_document(config, "yaml", [recipient], RULES, source="config.yaml")
    )


def forbidden(text: str) -> list[str]:
    found = []
    for value in (PASSWORD, TOKEN, NEW_PASSWORD):
        for shape in (value, base64.b64encode(value.encode()).decode()):
            if shape in text:
                found.append(shape)
    return found


def test_encrypted_manifests_sync_and_no_channel_shows_a_plaintext(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl, start_agent, tmp_path
) -> None:
    identity, recipient = generate_identity()
    kubectl(
        "create",
        "secret",
        "generic",
        "age-keys",
        "-n",
        namespace,
        f"--from-literal=identity.agekey={identity}",
    )
    encrypted_files(repo, recipient, PASSWORD)
    repo.commit("encrypted settings")
    for path in ("secret.yaml", "config.yaml"):
        assert not forbidden((repo.root / path).read_text())  # nothing in clear in Git
    keys = ("--decryption-secret", f"{namespace}/age-keys")
    outputs: list[str] = []

    code, out, err = cli("diff", "--source", str(repo.root), "--app", "web", "-n", namespace, *keys)
    outputs += [out, err]
    assert code == 1 and "ConfigMap" in out

    code, out, err = cli(
        "sync",
        "--source",
        str(repo.root),
        "--app",
        "web",
        "-n",
        namespace,
        "-v",
        *keys,
    )
    outputs += [out, err]
    assert code == 0, err
    assert (
        base64.b64decode(kubectl.get("secret", "db", namespace)["data"]["password"]).decode()
        == PASSWORD
    )
    assert kubectl.get("configmap", "api", namespace)["data"] == {"token": TOKEN, "mode": "fast"}

    encrypted_files(repo, recipient, NEW_PASSWORD)
    repo.commit("rotate the password")
    code, out, err = cli("diff", "--source", str(repo.root), "--app", "web", "-n", namespace, *keys)
    outputs += [out, err]
    assert code == 1 and "masked, changed" in out
    code, out, err = cli(
        "sync",
        "--source",
        str(repo.root),
        "--app",
        "web",
        "-n",
        namespace,
        "-o",
        "json",
        *keys,
    )
    outputs += [out, err]
    assert code == 0 and json.loads(out)["result"] == "succeeded"

    kubectl("patch", "-n", namespace, "configmap/api", "-p", '{"data":{"token":"hand-edited"}}')
    code, out, err = cli("diff", "--source", str(repo.root), "--app", "web", "-n", namespace, *keys)
    outputs += [out, err]
    # The live value at an encrypted path may be an earlier secret: masked, shown as changed.
    assert code == 1 and "masked, changed" in out and "hand-edited" not in out

    code, _, err = cli("sync", "--source", str(repo.root), "--app", "web", "-n", namespace)
    outputs.append(err)
    assert code == 2 and ("secret.yaml" in err or "config.yaml" in err)
    assert "no identity" in err.lower() or "identit" in err.lower()

    receiver = Receiver()
    try:
        apply_yaml(
            kubectl,
            source_and_app(
                namespace, str(repo.root), extra="  decryption: {secretRef: {name: age-keys}}\n"
            )
            + f"""---
apiVersion: tether.dev/v1alpha1
kind: AlertProvider
metadata: {{name: hook, namespace: {namespace}}}
spec: {{type: webhook, url: "{receiver.url}"}}
""",
        )
        agent = start_agent()
        wait_for(
            lambda: kubectl.get("configmap", "api", namespace)["data"]["token"] == TOKEN,
            60,
            "agent restores the token",
        )
        kubectl("patch", "-n", namespace, "configmap/api", "-p", '{"data":{"token":"drifted"}}')
        try:
            wait_for(
                lambda: (
                    {"DriftDetected", "DriftCorrected"} <= {e["event"] for e in receiver.events()}
                ),
                120,
                "alerts",
            )
        except (
            AssertionError
        ) as error:  # say what the agent did, to tell a lost event from a slow one
            seen = [e["event"] for e in receiver.events()]
            tail = agent.log.read_text()[-4000:]
            raise AssertionError(
                f"{error}; alerts received: {seen}; agent log tail:\n{tail}"
            ) from None
        outputs += [body.decode() for _, body in receiver.received]
        outputs.append(agent.log.read_text())
    finally:
        receiver.close()

    audit_bytes = cli.db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    outputs.append(audit_bytes.decode(errors="replace"))
    events = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    outputs.append(events)
    leaks = [shape for text in outputs for shape in forbidden(text)]
    assert leaks == []
