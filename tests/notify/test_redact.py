"""Masking provider URLs and scrubbing their secret parts out of free text."""

from __future__ import annotations

import pytest

from tether.notify import masked_url
from tether.notify.redact import Redactor


@pytest.mark.parametrize(
    ("url", "secret_path", "expected"),
    [
        (
            "https://hooks.slack.com/services/T000/B000/XXXX",
            True,
            "https://hooks.slack.com/services/***",
        ),
        ("https://mm.example.com/hooks/abc123", True, "https://mm.example.com/hooks/***"),
        ("https://chat.example.com/abc123", True, "https://chat.example.com/***"),
        ("https://chat.example.com/", True, "https://chat.example.com/"),
        (
            "https://bot:pw@alerts.example.com/hook?token=t0k&team=a#frag",
            False,
            "https://***@alerts.example.com/hook?token=***&team=***#***",
        ),
        ("http://127.0.0.1:9093", False, "http://127.0.0.1:9093"),
        ("http://[::1", False, "<unparseable URL>"),
    ],
)
def test_masked_url(url: str, secret_path: bool, expected: str) -> None:
    assert masked_url(url, secret_path=secret_path) == expected


def test_redactor_scrubs_the_url_and_its_parts_in_any_form() -> None:
    url = "https://bot:s3cr%40t@hooks.example.com/services/T000/B000/XXXXsecret?token=abcd1234"
    redactor = Redactor(url, secret_path=True)
    text = redactor.scrub(
        f"failed {url}; path services/T000/B000/XXXXsecret; decoded s3cr@t; query token=abcd1234"
    )
    for secret in ("XXXXsecret", "s3cr@t", "s3cr%40t", "abcd1234"):
        assert secret not in text
    assert "https://***@hooks.example.com/services/***?token=***" in text
