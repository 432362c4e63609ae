"""Issue #12, "Why" (medium): ``tether.dev/applied-digest`` was an unsalted hash of the
decrypted body; ``diff`` printed it and a 4-digit PIN was recovered offline.

Now the digest of a Secret or of an object with decrypted values hashes its shape only: the
attack below (every PIN tried against the live annotation) singles out nothing, ``diff`` shows
no digest, the no-op fast path still settles such objects without a dry-run, and objects
stamped with the old digest are applied once, then settle.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
from typing import Any

from tests.conftest import Cli, GitRepo, Kubectl
from tether.cluster import kubeconfig
from tether.core import Action
from tether.core.compare import DIGEST_ANNOTATION, SERVER_SET_METADATA, digest
from tether.devcluster.controlplane import DevCluster
from tether.reconcile.decrypt import KeySources
from tether.reconcile.options import SyncOptions
from tether.reconcile.run import SourceSpec, SyncReport, run_sync
from tether.secrets import EncryptionRules, encrypt_document, generate_identity

PIN = "4821"
RULES = EncryptionRules(encrypted_regex="^(data|stringData)$")


def write_secrets(repo: GitRepo, recipient: str, pin: str) -> None:
    pin64 = base64.b64encode(pin.encode()).decode()
    texts = {
        "data.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pin-data\ntype: Opaque\n"
        f"data:\n  pin: {pin64}\n",
        "string.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pin-string\n"
        f"type: Opaque\nstringData:\n  pin: '{pin}'\n",
        "config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pin-config\n"
        f"data:\n  pin: '{pin}'\n",
    }
    for name, text in texts.items():
        repo.write(name, encrypt_document(text, "yaml", [recipient], RULES, source=name))


def sync(dev_cluster: DevCluster, repo: GitRepo, namespace: str) -> SyncReport:
    options = SyncOptions(
        app=f"{namespace}.pins",
        namespace=namespace,
        timeout=0,
        keys=KeySources(secret=f"{namespace}/age-keys"),
    )
    connection = kubeconfig.load(dev_cluster.kubeconfig_path)
    report = asyncio.run(
        run_sync(SourceSpec(str(repo.root)), options, connection, audit=None, actor="test")
    )
    assert report.succeeded, report.error
    return report


def applied_body(live: dict[str, Any], pin: str) -> dict[str, Any]:
    """What an attacker who can read the object's metadata rebuilds of the applied manifest,
    with ``pin`` as the guess."""
    metadata = {k: v for k, v in live["metadata"].items() if k not in SERVER_SET_METADATA}
    metadata["annotations"] = {
        k: v for k, v in (metadata.get("annotations") or {}).items() if k != DIGEST_ANNOTATION
    }
    if not metadata["annotations"]:
        del metadata["annotations"]
    body = {"apiVersion": live["apiVersion"], "kind": live["kind"], "metadata": metadata}
    if live["kind"] == "Secret":
        body["type"] = live["type"]
        body["data"] = {"pin": base64.b64encode(pin.encode()).decode()}
    else:
        body["data"] = {"pin": pin}
    return body


def test_the_applied_digest_reveals_no_pin_and_diff_shows_none(
    dev_cluster: DevCluster, cli: Cli, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    identity, recipient = generate_identity()
    kubectl(
        "create", "secret", "generic", "age-keys", "-n", namespace, f"--from-literal=k={identity}"
    )
    write_secrets(repo, recipient, PIN)
    repo.commit("pins")
    sync(dev_cluster, repo, namespace)

    for kind, name in (("secret", "pin-data"), ("configmap", "pin-config")):
        live = kubectl.get(kind, name, namespace)
        stamp = live["metadata"]["annotations"][DIGEST_ANNOTATION]
        # The rebuild is exact: it reproduces the stamp (so the attack is the real one)...
        assert digest(applied_body(live, PIN), blind=True) == stamp
        # ...and every guess matches alike, under either digest: nothing singles the PIN out.
        for blind in (False, True):
            matches = {
                f"{n:04d}"
                for n in range(10_000)
                if digest(applied_body(live, f"{n:04d}"), blind=blind) == stamp
            }
            assert len(matches) in (0, 10_000), (name, blind, matches & {PIN})

    write_secrets(repo, recipient, "9999")
    repo.commit("new pins")
    keys = ("--decryption-secret", f"{namespace}/age-keys")
    code, out, err = cli(
        "diff", "--source", str(repo.root), "--app", "pins", "-n", namespace, *keys
    )
    assert code == 1, err
    assert "masked, changed" in out
    assert not re.search(r"\b[0-9a-f]{32}\b", out), out
    assert "9999" not in out and PIN not in out


def test_secrets_keep_the_no_op_fast_path_and_old_digests_migrate_with_one_apply(
    dev_cluster: DevCluster, repo: GitRepo, namespace: str, kubectl: Kubectl
) -> None:
    identity, recipient = generate_identity()
    kubectl(
        "create", "secret", "generic", "age-keys", "-n", namespace, f"--from-literal=k={identity}"
    )
    write_secrets(repo, recipient, PIN)
    repo.commit("pins")
    sync(dev_cluster, repo, namespace)

    settled = sync(dev_cluster, repo, namespace)
    for obj in settled.objects:
        # Proven unchanged locally: no dry-run was sent for any of them.
        assert obj.action is Action.UNCHANGED and obj.dry_run is None, obj.ref

    # Objects an older Tether stamped with the digest of the whole decrypted body.
    for kind, name in (("secret", "pin-data"), ("configmap", "pin-config")):
        live = kubectl.get(kind, name, namespace)
        old = copy.deepcopy(applied_body(live, PIN))
        old["metadata"]["annotations"] = {DIGEST_ANNOTATION: digest(old)}
        kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=tether",
            "-f",
            "-",
            stdin=json.dumps(old),
        )
    migrated = sync(dev_cluster, repo, namespace)
    actions = {str(o.ref): o.action for o in migrated.objects}
    assert actions == {
        f"Secret/{namespace}/pin-data": Action.CONFIGURED,
        f"Secret/{namespace}/pin-string": Action.UNCHANGED,
        f"ConfigMap/{namespace}/pin-config": Action.CONFIGURED,
    }
    again = sync(dev_cluster, repo, namespace)
    assert all(o.action is Action.UNCHANGED and o.dry_run is None for o in again.objects)
