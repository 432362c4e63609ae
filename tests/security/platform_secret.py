"""The platform's SOPS-encrypted Secret that the source-path tests try to reach from a team's
directory: its age key stored in the namespace, and the encrypted Secret committed under
``platform/secrets`` (a kustomization a team's kustomization can name as a base)."""

from __future__ import annotations

from tests.conftest import GitRepo, Kubectl
from tether.secrets import EncryptionRules, encrypt_document, generate_identity

RULES = EncryptionRules(encrypted_regex="^(data|stringData)$")


def store_age_key(kubectl: Kubectl, namespace: str) -> str:
    """A new age identity stored as Secret ``age-keys`` of ``namespace``; its recipient."""
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
    return recipient


def write_platform_secret(repo: GitRepo, recipient: str, password: str) -> None:
    """Secret ``platform-db`` holding ``password``, encrypted for ``recipient``, written (not
    committed) as ``platform/secrets/db.yaml`` with a kustomization listing it."""
    # Keys in the order kustomize writes them, so the SOPS MAC still holds after a build.
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: platform-db\n"
        f"stringData:\n  password: {password}\ntype: Opaque\n"
    )
    repo.write(
        "platform/secrets/db.yaml",
        encrypt_document(secret, "yaml", [recipient], RULES, source="platform/secrets/db.yaml"),
    )
    repo.write("platform/secrets/kustomization.yaml", "resources: [db.yaml]\n")
