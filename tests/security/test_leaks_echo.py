"""Issue #12, "Why" (medium): decrypted values leaked when the API server echoed them escaped
(a value with a quote, a newline, a tab or a backslash), to stderr, ``-o json``, history, the
audit DB, the Ready condition and Events.

Each test commits SOPS-encrypted objects whose decrypted value breaks a field the server
validates, so the server's refusal quotes the value back (Go-quoted). The value must show up in
no channel, in no spelling; the refusal must still name the object, the field and the reason.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.agent.conftest import app_condition, apply_yaml, source_and_app, wait_for
from tests.conftest import Cli, GitRepo, Kubectl
from tether.cluster import kubeconfig
from tether.cluster.client import ApiError, KubeClient
from tether.devcluster.controlplane import DevCluster
from tether.reconcile.decrypt import Redactor
from tether.secrets import EncryptionRules, encrypt_document, generate_identity

# A quote, a newline, a tab and a backslash: the server quotes each differently from the value.
VALUE = 'pin"7x3q\n\tback\\slashZQ-0042'
# markers that no generated name can hold (namespaces are t-<hex>: "7e3f" once matched one)
MARKERS = ("7x3q", "slashZQ")
RULES = EncryptionRules(encrypted_regex="^(stringData|labels|externalName)$")


def leaked(text: str) -> list[str]:
    """The spellings of VALUE found in ``text``: any plain, escaped or quoted echo holds one
    of the markers; the encoded ones are checked whole."""
    found = [marker for marker in MARKERS if marker in text]
    raw = VALUE.encode()
    for encoded in (
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        quote(VALUE, safe=""),
    ):
        if encoded in text:
            found.append(encoded)
    return found


def commit_refused_objects(repo: GitRepo, kubectl: Kubectl, namespace: str) -> None:
    """A Secret with the value in a label and a password, and an ExternalName Service with it
    as the external name: both refused by the API server, which echoes the value."""
    identity, recipient = generate_identity()
    kubectl(
        "create", "secret", "generic", "age-keys", "-n", namespace, f"--from-literal=k={identity}"
    )
    value = json.dumps(VALUE)
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  labels:\n"
        f"    tier: {value}\ntype: Opaque\nstringData:\n  password: {value}\n"
    )
    service = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec:\n  type: ExternalName\n"
        f"  externalName: {value}\n"
    )
    for name, text in (("secret.yaml", secret), ("service.yaml", service)):
        repo.write(name, encrypt_document(text, "yaml", [recipient], RULES, source=name))
    repo.commit("settings")
    assert not leaked((repo.root / "secret.yaml").read_text())


def test_the_servers_echo_of_a_decrypted_value_reaches_no_cli_channel(
    cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    commit_refused_objects(repo, kubectl, namespace)
    keys = ("--decryption-secret", f"{namespace}/age-keys")
    args = ("--source", str(repo.root), "--app", "web", "-n", namespace, *keys)
    outputs: list[str] = []

    code, out, err = cli("sync", *args)
    outputs += [out, err]
    assert code == 2
    assert "Secret/" in err and "metadata.labels: FieldValueInvalid" in err
    assert "spec.externalName: FieldValueInvalid" in err

    code, out, err = cli("sync", *args, "-o", "json")
    outputs += [out, err]
    assert code == 2 and json.loads(out)["result"] == "failed"

    code, out, err = cli("diff", *args)
    outputs += [out, err]
    assert code == 2 and "FieldValueInvalid" in err

    for output_format in ("text", "json"):
        code, out, err = cli("history", "web", "-n", namespace, "-o", output_format)
        outputs += [out, err]
        assert code == 0 and "failed" in out
    outputs.append(cli.db.read_bytes().decode(errors="replace"))

    assert [found for text in outputs for found in leaked(text)] == []


def test_the_masker_alone_masks_the_servers_escaped_echo(
    dev_cluster: DevCluster, namespace: str
) -> None:
    """The safety net under the withheld messages: the server's own refusal, which does quote
    the value, comes out of the redactor without it."""
    redactor = Redactor()
    redactor.add(VALUE)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": namespace, "labels": {"tier": VALUE}},
        "stringData": {"password": VALUE},
    }

    async def refusal() -> ApiError:
        async with KubeClient(kubeconfig.load(dev_cluster.kubeconfig_path)) as client:
            resource = await client.resource("v1", "Secret")
            with pytest.raises(ApiError) as caught:
                await client.apply(resource, body, dry_run=True)
            return caught.value

    error = asyncio.run(refusal())
    assert leaked(str(error)), "the server no longer echoes the value: the test proves nothing"
    assert leaked(str(error)) and not leaked(redactor.scrub(str(error)))
    assert not leaked(error.withheld) and "metadata.labels" in error.withheld


def test_the_agent_shows_no_decrypted_value_in_its_condition_events_or_audit(
    repo: GitRepo,
    namespace: str,
    kubectl: Kubectl,
    start_agent,
    tmp_path: Path,
) -> None:
    commit_refused_objects(repo, kubectl, namespace)
    apply_yaml(
        kubectl,
        source_and_app(
            namespace, str(repo.root), extra="  decryption: {secretRef: {name: age-keys}}\n"
        ),
    )
    agent = start_agent()
    ready = wait_for(
        lambda: (
            (c := app_condition(kubectl, namespace, "web", "Ready"))
            and c["status"] == "False"
            and "FieldValueInvalid" in c.get("message", "")
            and c
        ),
        60,
        "the App to report the refusal",
    )
    events = wait_for(
        lambda: (
            (text := kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
            and "SyncFailed" in text
            and text
        ),
        30,
        "a SyncFailed event",
    )
    app = json.dumps(kubectl.get("apps.tether.dev", "web", namespace))
    audit = b"".join(p.read_bytes() for p in tmp_path.glob("audit.db*"))
    outputs = [
        json.dumps(ready),
        events,
        app,
        agent.log.read_text(),
        audit.decode(errors="replace"),
    ]
    assert [found for text in outputs for found in leaked(text)] == []
