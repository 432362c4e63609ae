"""How a revision is shortened for people: a commit to 12 hex digits, a digest to its
algorithm and 12 hex digits (OCI artifacts and charts are identified by ``sha256:`` digests)."""

from tether.core import Revision


def test_a_commit_is_shortened_to_twelve_digits() -> None:
    revision = Revision("https://git.example/x.git", "main", "0123456789abcdef" * 2 + "01234567")
    assert revision.short == "0123456789ab"
    assert str(revision) == "main@0123456789ab"


def test_a_digest_keeps_its_algorithm_and_twelve_digits() -> None:
    revision = Revision("oci://registry.example/apps/web", "1.4.2", "sha256:" + "4f90" * 16)
    assert revision.short == "sha256:4f904f904f90"
    assert str(revision) == "1.4.2@sha256:4f904f904f90"
