"""Fetching Git sources: the only piece of Tether that runs git.

    fetch(url, ref) -> Artifact(revision, root)

``revision`` is the exact commit (``tether.core.Revision``, credentials masked from its URL) and
``root`` a read-only directory holding that commit's tree. Each remote has a bare mirror in the
cache, updated on every fetch; each commit's tree is extracted once and reused. See
``docs/sources.md``.

Modules: ``urls`` (parsing, masking, cache names), ``git`` (running git safely), ``mirror`` (the
cached bare repository and its lock), ``refs`` (ref to commit), ``extract`` (commit to directory),
``fetch`` (the steps in order, and the one place git failures become ``SourceError``).
"""

from tether.source.fetch import Artifact, default_cache_dir, fetch
from tether.source.urls import mask_url

__all__ = ["Artifact", "default_cache_dir", "fetch", "mask_url"]
