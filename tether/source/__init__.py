"""Fetching Git sources: the only piece of Tether that runs git.

    fetch(url, ref) -> Artifact(revision, root)
    fetch(url, ref, credentials=TokenFile(path) | GitHubApp(...))   short-lived http(s) tokens
    fetch(url, "semver:^1.4")                   the highest tag in a semver range
    fetch(url, ref, verify=SignaturePolicy(...))  only a commit signed by a trusted key
    fetch(url, ref, rules=FetchRules.tenant())  a source written by someone else (the agent)
    fetch_chart(ChartSource(repository, name, "^1.4"))  a Helm chart package, digest-verified
    fetch_artifact("oci://host/repo:tag", OCIAuth(...))  an OCI artifact (Flux's format), unpacked
    fetch_oci_chart("oci://host/charts/name", "^1.4")  a Helm chart from an OCI registry

``revision`` is the exact commit (``tether.core.Revision``, credentials masked from its URL) and
``root`` a read-only directory holding that commit's tree. Each remote has a bare mirror in the
cache, updated on every fetch; each commit's tree is extracted once and reused. See
``docs/sources.md``.

Modules: ``urls`` (parsing, masking, cache names), ``git`` (running git safely), ``mirror`` (the
cached bare repository and its lock), ``refs`` (ref to commit), ``extract`` (commit to directory),
``fetch`` (the steps in order, and the one place git failures become ``SourceError``),
``charts`` (Helm charts from a Helm HTTP repository: index, digest, cache), ``oci`` (artifacts
and charts in OCI registries) with ``oci_reference`` (the oci:// grammar), ``oci_client`` (the
distribution API over httpx: auth, verified manifests and blobs) and ``oci_artifact`` (Flux's
artifact format),
``credentials`` (tokens that rotate: a token file, a GitHub App), ``rules`` (what a fetch may
reach: URL forms, plain http, the machine's own git configuration and keys), ``semver`` (versions, ranges,
the highest matching tag), ``verify`` (commit signatures against trusted SSH/OpenPGP keys).
"""

from tether.source.charts import (
    ChartArtifact,
    ChartCredentials,
    ChartRepositoryAuth,
    ChartSource,
    chart_cache_dir,
    fetch_chart,
)
from tether.source.credentials import BasicAuth, CredentialProvider, GitHubApp, SshKey, TokenFile
from tether.source.fetch import Artifact, default_cache_dir, fetch
from tether.source.oci import (
    FetchedArtifact,
    OCIAuth,
    OCIReference,
    fetch_artifact,
    fetch_artifact_async,
    fetch_oci_chart,
    fetch_oci_chart_async,
    push_artifact,
)
from tether.source.rules import FetchRules
from tether.source.urls import mask_text, mask_url
from tether.source.verify import Signature, SignaturePolicy

__all__ = [
    "Artifact",
    "BasicAuth",
    "ChartArtifact",
    "ChartCredentials",
    "ChartRepositoryAuth",
    "ChartSource",
    "CredentialProvider",
    "FetchRules",
    "FetchedArtifact",
    "GitHubApp",
    "OCIAuth",
    "OCIReference",
    "Signature",
    "SignaturePolicy",
    "SshKey",
    "TokenFile",
    "chart_cache_dir",
    "default_cache_dir",
    "fetch",
    "fetch_artifact",
    "fetch_artifact_async",
    "fetch_chart",
    "fetch_oci_chart",
    "fetch_oci_chart_async",
    "mask_text",
    "mask_url",
    "push_artifact",
]
