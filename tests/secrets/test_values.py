"""Scalars are typed and spelled the way sops (Go, go yaml.v3) types and spells them.

The expected values below were measured with go yaml.v3 v3.0.4 and Go's strconv, the versions
sops v3.13.3 is built with; the interop tests check the same through the sops binary.
"""

from __future__ import annotations

import hashlib
import math

import pytest

from tether.secrets import _go
from tether.secrets._cipher import plaintext_of
from tether.secrets._tree import Timestamp
from tether.secrets._walk import MAC_ONLY_ENCRYPTED_INIT

# (unquoted YAML scalar, sops type, the bytes sops hashes and encrypts)
GO_YAML_V3 = [
    ("on", "str", "on"),
    ("yes", "str", "yes"),
    ("y", "str", "y"),
    ("True", "bool", "True"),
    ("tRUE", "str", "tRUE"),
    ("017", "int", "15"),
    ("08", "float", "8"),
    ("0o17", "int", "15"),
    ("0x1F", "int", "31"),
    ("-0b101", "int", "-5"),
    ("1_000", "int", "1000"),
    (".5_5", "float", "0.55"),
    ("1e5", "float", "100000"),
    ("+.5", "float", "0.5"),
    ("1.0", "float", "1"),
    ("-0", "int", "0"),
    ("1e400", "str", "1e400"),
    ("9223372036854775807", "int", "9223372036854775807"),
    ("-9223372036854775809", "float", "-9223372036854776000"),
    ("2024-01-01", "time", "2024-01-01T00:00:00Z"),
    ("2024-1-2T3:4:5.5+02:00", "time", "2024-01-02T03:04:05.5+02:00"),
    ("2024-01-01T10:00:00", "str", "2024-01-01T10:00:00"),
    ("2024-01-01 10:00:00", "time", "2024-01-01T10:00:00Z"),
    ("2024-02-30", "str", "2024-02-30"),
    ("0000-02-29", "time", "0000-02-29T00:00:00Z"),
    ("12:30", "str", "12:30"),
    ("0x1p-2", "str", "0x1p-2"),
    (".inf", "float", "+Inf"),
    ("-.Inf", "float", "-Inf"),
    (".nan", "float", "NaN"),
]


@pytest.mark.parametrize(("scalar", "kind", "plaintext"), GO_YAML_V3)
def test_plain_scalars_resolve_like_go_yaml_v3(scalar: str, kind: str, plaintext: str) -> None:
    assert plaintext_of(_go.resolve_plain(scalar)) == (kind, plaintext.encode())


@pytest.mark.parametrize("scalar", ["", "~", "null", "Null", "NULL"])
def test_nulls(scalar: str) -> None:
    assert _go.resolve_plain(scalar) is None


def test_an_unsigned_64_bit_integer_is_refused_like_sops_does() -> None:
    with pytest.raises(_go.UnsupportedScalar):
        _go.resolve_plain("9223372036854775808")


@pytest.mark.parametrize(
    ("value", "spelled"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (0.1, "0.1"),
        (100.0, "100"),
        (1.5e-7, "0.00000015"),
        (1e21, "1000000000000000000000"),
        (123.456, "123.456"),
        (5e-324, "0." + "0" * 323 + "5"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_floats_are_spelled_like_go_format_float_f_minus_one(value: float, spelled: str) -> None:
    assert _go.format_float(value) == spelled


def test_booleans_are_spelled_like_sops() -> None:
    assert plaintext_of(True) == ("bool", b"True")
    assert plaintext_of(False) == ("bool", b"False")


@pytest.mark.parametrize(
    ("text", "value"),
    [("True", True), ("true", True), ("1", True), ("F", False), ("FALSE", False)],
)
def test_decrypted_booleans_parse_like_go(text: str, value: bool) -> None:
    assert _go.parse_bool(text) is value


@pytest.mark.parametrize("text", ["yes", "on", "", "TrUe"])
def test_other_boolean_spellings_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        _go.parse_bool(text)


def test_rfc3339_round_trips_through_marshal_text() -> None:
    assert _go.rfc3339("2024-05-06T07:08:09.120000000+00:00") == Timestamp(
        "2024-05-06T07:08:09.12Z"
    )
    assert _go.rfc3339_seconds("2024-05-06T07:08:09.5-03:30") == "2024-05-06T07:08:09-03:30"
    with pytest.raises(ValueError):
        _go.rfc3339("2024-05-06 07:08:09Z")


def test_mac_only_encrypted_starts_from_sha256_of_sops() -> None:
    assert hashlib.sha256(b"sops").digest() == MAC_ONLY_ENCRYPTED_INIT
    assert MAC_ONLY_ENCRYPTED_INIT.hex().startswith("8a3fd2ad54ce6652")
