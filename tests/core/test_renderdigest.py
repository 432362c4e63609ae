"""The render digest: order-blind, value-blind for sensitive objects, and changed by any other
difference."""

from __future__ import annotations

import copy
from typing import Any

from tether.core import Manifest
from tether.core.renderdigest import DIGEST_PREFIX, render_digest, short_digest


def config(name: str, value: str) -> Manifest:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"k": value},
    }
    return Manifest(body)


def secret(value: str) -> Manifest:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"p": value}}
    return Manifest(body)


def test_the_order_of_objects_does_not_matter() -> None:
    a, b = config("a", "1"), config("b", "2")
    assert render_digest([a, b]) == render_digest([b, a])
    assert render_digest([a, b]).startswith(DIGEST_PREFIX)


def test_any_value_of_a_plain_object_changes_it() -> None:
    assert render_digest([config("a", "1")]) != render_digest([config("a", "2")])
    assert render_digest([config("a", "1")]) != render_digest([config("a", "1"), config("b", "1")])


def test_secret_values_and_decrypted_values_do_not_change_it() -> None:
    assert render_digest([secret("one")]) == render_digest([secret("two")])
    decrypted = copy.deepcopy(config("a", "x"))
    decrypted.decrypted = (("data", "k"),)
    other = Manifest(config("a", "y").body, decrypted=(("data", "k"),))
    assert render_digest([decrypted]) == render_digest([other])
    assert render_digest([decrypted]) != render_digest([config("a", "x")])


def test_short_digest_is_twelve_hex_digits() -> None:
    value = render_digest([config("a", "1")])
    assert short_digest(value) == value[len(DIGEST_PREFIX) : len(DIGEST_PREFIX) + 12]
