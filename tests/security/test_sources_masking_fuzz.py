"""Fuzzing the git URL masker (``tether.source.urls``): whatever a password holds (``/ # ? @ %``,
spaces, any Unicode), written raw or percent-encoded, it never survives ``mask_url`` or
``mask_text``; and neither ever raises.

A short run (300 examples per property) is part of the suite. The long run, for a change to the
masker, is (docs/sources.md, "Fuzzing the masker")::

    TETHER_FUZZ_EXAMPLES=20000 .venv/bin/pytest -q -p no:cacheprovider \
        tests/security/test_sources_masking_fuzz.py
"""

from __future__ import annotations

import os
from urllib.parse import quote

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tether.source import mask_text, mask_url
from tether.source.urls import parse_remote

EXAMPLES = int(os.environ.get("TETHER_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 300)

_PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"))
passwords = st.text(_PRINTABLE, min_size=1, max_size=40).filter(lambda p: "*" not in p)
special_passwords = st.lists(
    st.sampled_from(["/", "#", "?", "@", "%", " ", "%2F", "%%", "@@", ":", "a", "Z9"]),
    min_size=1,
    max_size=12,
).map("".join)
users = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_."), min_size=1, max_size=12)
hosts = st.sampled_from(["git.example.com", "127.0.0.1:8080", "[::1]:3000", "h"])
paths = st.text(st.sampled_from("abcxyz/._-~"), max_size=30)
schemes = st.sampled_from(["https", "http", "HTTPS", "ssh"])
glue = st.text(_PRINTABLE, max_size=20)


def _url(scheme: str, user: str, password: str, host: str, path: str) -> str:
    return f"{scheme}://{user}:{password}@{host}/{path}"


def _masked(user: str, host: str, path: str) -> str:
    """The https URL as masked: where the password may appear without having leaked."""
    return f"https://{user}:***@{host}/{path}"


@FUZZ
@given(schemes, users, st.one_of(passwords, special_passwords), hosts, paths)
def test_a_raw_password_is_masked_exactly(
    scheme: str, user: str, password: str, host: str, path: str
) -> None:
    masked = mask_url(_url(scheme, user, password, host, path))
    assert masked == f"{scheme}://{user}:***@{host}/{path}"


@FUZZ
@given(schemes, users, st.one_of(passwords, special_passwords), hosts, paths)
def test_a_percent_encoded_password_is_masked_exactly(
    scheme: str, user: str, password: str, host: str, path: str
) -> None:
    masked = mask_url(_url(scheme, user, quote(password, safe=""), host, path))
    assert masked == f"{scheme}://{user}:***@{host}/{path}"


@FUZZ
@given(users, st.one_of(passwords, special_passwords), hosts, st.text(_PRINTABLE, max_size=30))
def test_a_password_never_survives_whatever_the_path_holds(
    user: str, password: str, host: str, path: str
) -> None:
    url = _url("https", user, password, host, path)
    assume(password not in _masked(user, host, path))
    assert password not in mask_url(url)
    if not set(url) & set("\n\r\0"):
        assert password not in parse_remote(url).display


@FUZZ
@given(glue, users, st.one_of(passwords, special_passwords), hosts, paths, glue)
def test_mask_text_hides_an_encoded_password_anywhere_in_a_message(
    before: str, user: str, password: str, host: str, path: str, after: str
) -> None:
    encoded = quote(password, safe="")
    url = _url("https", user, encoded, host, path)
    assume(encoded not in f"{before}'{_masked(user, host, path)}' {after}")
    assert encoded not in mask_text(f"{before}'{url}' {after}")


@FUZZ
@given(glue, users, st.one_of(passwords, special_passwords), hosts, paths, glue)
def test_mask_text_hides_a_known_password_in_every_form(
    before: str, user: str, password: str, host: str, path: str, after: str
) -> None:
    """git and servers echo a password raw or percent-encoded; both go when it is known."""
    encoded = quote(password, safe="")
    text = f"{before}{_url('https', user, password, host, path)} {encoded} {after}"
    expected = f"{before}{_masked(user, host, path)} *** {after}"
    assume(password not in expected and encoded not in expected)
    masked = mask_text(text, (password,))
    assert password not in masked
    assert encoded not in masked


@FUZZ
@given(glue, users, special_passwords.filter(lambda p: not (set(p) & set(" '\"<>"))), hosts, paths)
def test_mask_text_hides_a_raw_special_password_it_was_not_told(
    before: str, user: str, password: str, host: str, path: str
) -> None:
    url = _url("https", user, password, host, path)
    assume(password not in f"{before} {_masked(user, host, path)} rejected")
    assert password not in mask_text(f"{before} {url} rejected")


@FUZZ
@given(st.text(max_size=200))
def test_the_maskers_never_raise_and_are_idempotent(text: str) -> None:
    once = mask_url(text)
    assert mask_url(once) == once
    masked_text = mask_text(text, (text[:5],) if len(text) > 5 else ())
    assert isinstance(masked_text, str)
