"""Names of things in an OCI registry: ``oci://host[:port]/repository[:tag][@sha256:…]``.

    OCIReference.parse("oci://ghcr.io/org/app:1.4.2")
    OCIReference.parse("oci://127.0.0.1:5000/apps/web@sha256:4f90…")

The grammar is the distribution spec's: a repository is lowercase path components separated by
``/`` (each ``[a-z0-9]`` runs joined by ``.``, ``_``, ``__`` or dashes), a tag is at most 128
characters of ``[A-Za-z0-9_.-]`` not starting with ``.`` or ``-``, a digest is ``sha256:`` and 64
lowercase hex digits. Credentials written into the reference are refused: they would end up in
logs and in the recorded source; give them through a password file or a Secret instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from tether.errors import SourceError

SCHEME = "oci://"
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$"
)
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_EXAMPLE = "oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]"


@dataclass(frozen=True)
class OCIReference:
    """A repository in a registry, optionally with a tag and/or a manifest digest.

    When both are given the digest wins: the tag is only a label for people (as with Docker
    and Flux, ``repo:tag@sha256:…`` fetches the digest whatever the tag points at now).
    """

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, text: str) -> OCIReference:
        """The reference ``text`` names; ``SourceError`` saying what is wrong otherwise."""
        stripped = text.strip()
        if not stripped.startswith(SCHEME):
            raise SourceError(f"{text!r} is not an OCI reference: write {_EXAMPLE}")
        rest = stripped[len(SCHEME) :]
        host, _, path = rest.partition("/")
        if "@" in host:
            raise SourceError(
                "OCI reference oci://***@…: credentials are not accepted in the reference; "
                "give a username and a password file (or a Secret) instead"
            )
        if not _HOST.match(host):
            raise SourceError(f"OCI reference {text!r}: {host!r} is not a registry host[:port]")
        path, _, digest = path.partition("@")
        name, tag = path, ""
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            name, _, tag = path.rpartition(":")
        if not _REPOSITORY.match(name):
            raise SourceError(
                f"OCI reference {text!r}: {name!r} is not a repository name (lowercase letters, "
                f"digits and . _ - separated by /); write {_EXAMPLE}"
            )
        if tag and not _TAG.match(tag):
            raise SourceError(f"OCI reference {text!r}: {tag!r} is not a valid tag")
        if digest and not DIGEST.match(digest):
            raise SourceError(
                f"OCI reference {text!r}: {digest!r} is not a sha256 digest (sha256: and 64 "
                "lowercase hex digits)"
            )
        return cls(host, name, tag, digest)

    @property
    def name(self) -> str:
        """``oci://host/repository``, without tag or digest."""
        return f"{SCHEME}{self.registry}/{self.repository}"

    @property
    def display(self) -> str:
        return (
            self.name
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag

    def with_tag(self, tag: str) -> OCIReference:
        return replace(self, tag=tag, digest="")

    def __str__(self) -> str:
        return self.display
