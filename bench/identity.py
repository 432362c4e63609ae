"""Counting the API requests of one client exactly: give it an identity of its own and read the
API server's Priority-and-Fairness counter for that identity.

``apiserver_request_total`` cannot be split by client: its labels are verb, dry_run, group,
version, resource, subresource, scope, component and code (k8s.io/apiserver
pkg/endpoints/metrics), there is no user-agent label, so "requests by ``tether/0.1``" is not in
it; subtracting a baseline from the total is noisy (controllers, kwok's node leases). Instead each
measured process gets a client certificate for a user of its own (``bench-<name>``, bound to
``cluster-admin``) and a FlowSchema ``bench-<name>`` matching that user, at the ``exempt``
priority level so it is never throttled (as the admin certificate in ``system:masters`` is not).
Every request that identity makes, watches included, is then counted by
``apiserver_flowcontrol_dispatched_requests_total{flow_schema="bench-<name>"}``.
"""

from __future__ import annotations

import re
import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tether.devcluster.controlplane import DevCluster


def create(cluster: DevCluster, kubectl: str, name: str, directory: Path) -> Path:
    """A kubeconfig for user ``bench-<name>`` (cluster-admin, counted on its own FlowSchema)."""
    user = f"bench-{name}"
    ca_cert = x509.load_pem_x509_certificate(cluster.pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(cluster.pki.ca_key.read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{user}.crt", directory / f"{user}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    admin = yaml.safe_load(cluster.kubeconfig_path.read_text())
    admin["users"] = [
        {
            "name": user,
            "user": {"client-certificate": str(cert_path), "client-key": str(key_path)},
        }
    ]
    for context in admin["contexts"]:
        context["context"]["user"] = user
    kubeconfig = directory / f"{user}.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(admin, sort_keys=False))
    kubeconfig.chmod(0o600)
    _grant_and_count(kubectl, cluster.kubeconfig_path, user)
    return kubeconfig


def _grant_and_count(kubectl: str, admin_kubeconfig: Path, user: str) -> None:
    objects = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": user},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": user},
            "spec": {
                "matchingPrecedence": 50,
                "priorityLevelConfiguration": {"name": "exempt"},
                "rules": [
                    {
                        "subjects": [{"kind": "User", "user": {"name": user}}],
                        "resourceRules": [
                            {
                                "verbs": ["*"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                                "clusterScope": True,
                            }
                        ],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                    }
                ],
            },
        },
    ]
    subprocess.run(
        [kubectl, f"--kubeconfig={admin_kubeconfig}", "apply", "--server-side", "-f", "-"],
        input=yaml.safe_dump_all(objects),
        text=True,
        check=True,
        capture_output=True,
    )


def count_impersonated(
    kubectl: str, admin_kubeconfig: Path, name: str, namespace: str, account: str
) -> None:
    """Count the requests ``bench-<name>`` sends as ServiceAccount ``namespace/account`` (the
    agent applies Apps by impersonating it, and the API server then sees that user) as its own:
    a FlowSchema ``bench-<name>-as-<namespace>`` that ``requests_by(…, name)`` adds up too."""
    schema = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": f"bench-{name}-as-{namespace}"},
        "spec": {
            "matchingPrecedence": 50,
            "priorityLevelConfiguration": {"name": "exempt"},
            "rules": [
                {
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "serviceAccount": {"namespace": namespace, "name": account},
                        }
                    ],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "namespaces": ["*"],
                            "clusterScope": True,
                        }
                    ],
                }
            ],
        },
    }
    subprocess.run(
        [kubectl, f"--kubeconfig={admin_kubeconfig}", "apply", "--server-side", "-f", "-"],
        input=yaml.safe_dump(schema),
        text=True,
        check=True,
        capture_output=True,
    )


def metrics_text(cluster: DevCluster) -> str:
    state = cluster.state()
    assert state is not None
    context = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
    context.load_cert_chain(str(cluster.pki.admin_cert), str(cluster.pki.admin_key))
    return httpx.get(f"{cluster.server_url(state)}/metrics", verify=context, timeout=30).text


def requests_by(cluster: DevCluster, *names: str) -> float:
    """Requests the API server has dispatched so far for the identities ``bench-<name>``
    (and the ServiceAccounts each impersonates, see ``count_impersonated``)."""
    text = metrics_text(cluster)
    total = 0.0
    for name in names:
        pattern = (
            r"^apiserver_flowcontrol_dispatched_requests_total\{[^}]*flow_schema=\"bench-"
            + re.escape(name)
            + r"(?:-as-[^\"]*)?\"[^}]*\} ([0-9.e+]+)$"
        )
        total += sum(float(v) for v in re.findall(pattern, text, re.M))
    return total
