"""Tether's exceptions, in one small hierarchy.

    TetherError                 every error Tether raises on purpose; the CLI maps it to exit 2
    ├── DevClusterError         the local control plane could not be provisioned or started
    ├── SourceError             git: unknown ref, unreachable remote (URL and ref named, creds masked)
    ├── RenderError             a manifest could not be read or built (file and line named)
    ├── SecretsError            a SOPS file could not be encrypted or decrypted (file and key path named)
    ├── ClusterError            the Kubernetes API refused or failed (object named first)
    │   └── OwnershipConflict   an object belongs to another app
    ├── TenancyViolation        an app breaks its team's limits (paths, namespaces, kinds)
    ├── PruneRefused            a guard stopped a prune (empty render, failed apply)
    ├── HealthTimeout           objects did not become healthy in time
    ├── AnalysisError           an analysis template or metric was refused (metric named)
    ├── AuditError              the audit store could not be opened or written
    └── ForgeError              a forge (Gitea, GitHub) refused a request (URL named, token never)
        └── ForgeUnreachable    the forge did not answer (down, timed out, 5xx): queue and retry

Every message names the thing it is about (file:line, object, URL@ref) and says what to do.
Secret values and credentials never appear in messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.core.changes import ChangeSet


class TetherError(Exception):
    """Base of every error Tether raises on purpose.

    ``changes`` is what had been written before the failure, when a sync failed part-way.
    """

    changes: ChangeSet | None = None


class DevClusterError(TetherError):
    """The local control plane could not be provisioned, started or reached."""


class SourceError(TetherError):
    """A Git source could not be fetched or read."""


class RenderError(TetherError):
    """Manifests could not be read, parsed or built."""


class SecretsError(TetherError):
    """A SOPS document could not be encrypted, decrypted or re-keyed.

    Messages name the file and the key path (``data.password``) and what failed; they never hold
    a plaintext value or a private key.
    """


class ClusterError(TetherError):
    """The Kubernetes API refused or failed an operation."""


class OwnershipConflict(ClusterError):
    """An object Tether would write is managed by another app."""


class TenancyViolation(TetherError):
    """An app would create something its team (or Project) may not: nothing of it is applied."""


class PruneRefused(TetherError):
    """A safety guard stopped a prune."""


class HealthTimeout(TetherError):
    """Objects did not become healthy before the timeout."""


class AnalysisError(TetherError):
    """An analysis template or metric could not be read: the message names the template, the
    metric and the field, and says what to write instead."""


class AuditError(TetherError):
    """The audit store could not be opened or written."""


class ForgeError(TetherError):
    """A forge refused or failed a request: pull request, comment, commit status.

    ``url`` is the request's URL (never with credentials in it), ``status`` the HTTP status when
    the forge answered.
    """

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ForgeUnreachable(ForgeError):
    """The forge did not answer usefully (connection refused, timeout, 5xx) after retries.

    Nothing can be known to have happened; callers queue the action and try again later.
    """
