"""``fetch``: one Git source at one ref, resolved to an exact commit and its tree on disk.

The steps, all under the mirror's lock and one deadline:

1. parse the URL (``urls``) and, when a credential provider is given, take its current token
(``credentials``); check both against the caller's ``rules``, 2. update the bare mirror and resolve the ref (``refs``,
``mirror``), 3. read the commit's author and subject, 4. extract its tree once into
``artifacts/<commit>/`` (``extract``). Git failures are turned into ``SourceError`` here, once,
with the masked URL and the ref in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tether.core import Revision
from tether.core.paths import cache_root
from tether.errors import SourceError
from tether.source.credentials import CredentialProvider, SshKey, with_credentials
from tether.source.extract import materialise
from tether.source.git import Deadline, Git, GitError, ssh_identity
from tether.source.mirror import Mirror
from tether.source.refs import check_ref, resolve
from tether.source.rules import FetchRules
from tether.source.semver import is_range_ref, latest_tag, parse_range_ref
from tether.source.urls import Remote, parse_remote
from tether.source.verify import Signature, SignaturePolicy, verify_commit


@dataclass(frozen=True)
class Artifact:
    """A fetched source: the exact revision, and a read-only directory with its tree.

    ``signature`` is the trusted signature that was checked, when ``fetch`` was given ``verify``.
    """

    revision: Revision
    root: Path
    signature: Signature | None = None


def default_cache_dir() -> Path:
    """``git/`` under Tether's cache (see ``tether.core.paths``)."""
    return cache_root() / "git"


def fetch(
    url: str,
    ref: str | None = None,
    *,
    cache_dir: Path | None = None,
    timeout: float = 120.0,
    credentials: CredentialProvider | None = None,
    verify: SignaturePolicy | None = None,
    rules: FetchRules | None = None,
    ssh_key: SshKey | None = None,
) -> Artifact:
    """Fetch ``url`` at ``ref`` (None: the remote's default branch) into the cache.

    ``url`` is a local path, ``file://``, ``http(s)://``, ``ssh://`` or ``user@host:path``;
    ``ref`` a branch, tag, ``refs/...`` name, or commit SHA (7 to 40 hex digits). Raises
    ``SourceError`` naming the masked URL and the ref when the remote cannot be reached, the ref
    does not exist, or ``timeout`` seconds pass.

    ``credentials`` (http(s) URLs only) is asked once per call for ``(username, token)``, used
    instead of any credentials in the URL; see ``tether.source.credentials``.

    ``ref`` may also be ``semver:<range>`` (``semver:^1.4``): the highest tag in that range, which
    becomes the revision's ``ref``; see ``tether.source.semver``. With ``verify``, the commit must
    be signed by one of the policy's keys or nothing is extracted; see ``tether.source.verify``.

    ``rules`` say what the fetch may reach (``tether.source.rules``): by default, the CLI's;
    the agent passes ``FetchRules.tenant()``. A URL they refuse fails before any git runs.
    ``ssh_key`` (ssh URLs only) is the key, and known hosts, ssh authenticates with.
    """
    rules = rules or FetchRules()
    remote = parse_remote(url)
    if is_range_ref(ref):
        parse_range_ref(ref, remote.display)  # a malformed range fails before any network
    elif ref is not None:
        check_ref(ref, remote.display)
    rules.check_url(remote, f"{remote.display} (ref {ref or 'HEAD'})")
    if credentials is not None:
        try:
            remote = with_credentials(remote, credentials)
        except SourceError as error:
            raise SourceError(
                f"cannot fetch {remote.display} (ref {ref or 'HEAD'}): {error}"
            ) from None
    rules.check(remote, f"{remote.display} (ref {ref or 'HEAD'})")
    if ssh_key is not None and remote.scheme != "ssh":
        raise SourceError(
            f"cannot fetch {remote.display} (ref {ref or 'HEAD'}): an ssh key applies to ssh "
            "URLs only; give the ssh URL, or a username and password for https"
        )
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    with ssh_identity(ssh_key, rules) as ssh_command:
        git = Git(remote, Deadline(timeout), rules, ssh_command)
        mirror = Mirror(cache / "repos" / remote.cache_name, git)
        try:
            with mirror.locked():
                asked, want = _what_to_resolve(mirror, ref)
                commit = resolve(mirror, want, asked)
                signature = (
                    verify_commit(mirror, commit, verify, asked) if verify is not None else None
                )
                author, subject = mirror.describe(commit)
                root = materialise(git, mirror.path, commit, cache / "artifacts")
        except GitError as error:
            raise SourceError(_explain(error, remote, ref, mirror.path)) from None
    return Artifact(Revision(remote.display, asked, commit, author, subject), root, signature)


def _what_to_resolve(mirror: Mirror, ref: str | None) -> tuple[str, str]:
    """``(ref as shown, ref to resolve)``; the remote's HEAD branch when no ref (or HEAD) is given."""
    if is_range_ref(ref):
        return latest_tag(mirror, ref)
    if ref is not None and ref != "HEAD":
        return ref, ref
    head = mirror.remote_head()
    if head.branch:
        return ref or head.branch, f"refs/heads/{head.branch}"
    if head.commit:
        return "HEAD", head.commit
    raise SourceError(
        f"{mirror.git.remote.display} has no default branch: the repository is empty or its "
        "HEAD names a branch that does not exist; push a commit or ask for a ref explicitly"
    )


def _explain(error: GitError, remote: Remote, ref: str | None, mirror: Path) -> str:
    """The one message for a git failure: what failed, about which URL and ref, what to do."""
    about = f"{remote.display} (ref {ref or 'HEAD'})"
    if error.timed_out:
        return f"timed out fetching {about}: {error.reason}; check the network or raise the timeout"
    if error.remote:
        return f"cannot reach {about}: {error.reason}; check the URL, network and credentials"
    return (
        f"cannot read {about} from the cache at {mirror}: {error.reason}; "
        "delete that directory to start over"
    )
