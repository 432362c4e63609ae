"""Push webhook verification per provider, and matching pushed repositories to GitSources."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tether.agent.webhooks import normalise, repository_urls, verified

SECRET = b"s3cret"
BODY = json.dumps({"repository": {"clone_url": "https://github.com/org/platform.git"}}).encode()


def digest(body: bytes, key: bytes = SECRET) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("provider", "good", "bad"),
    [
        (
            "github",
            {"X-Hub-Signature-256": f"sha256={digest(BODY)}"},
            {"X-Hub-Signature-256": f"sha256={digest(BODY, b'x')}"},
        ),
        ("gitea", {"X-Gitea-Signature": digest(BODY)}, {"X-Gitea-Signature": digest(b"other")}),
        ("gitlab", {"X-Gitlab-Token": "s3cret"}, {"X-Gitlab-Token": "guess"}),
        (
            "generic",
            {"X-Tether-Signature": f"sha256={digest(BODY)}"},
            {"X-Tether-Signature": digest(BODY)},
        ),
    ],
)
def test_signatures(provider: str, good: dict[str, str], bad: dict[str, str]) -> None:
    assert verified(provider, good, BODY, SECRET)
    assert not verified(provider, bad, BODY, SECRET)
    assert not verified(provider, {}, BODY, SECRET)
    assert not verified(provider, good, BODY + b" ", SECRET) or provider == "gitlab"


def test_unknown_provider_is_never_verified() -> None:
    assert not verified(
        "bitbucket", {"X-Hub-Signature-256": f"sha256={digest(BODY)}"}, BODY, SECRET
    )


def test_repository_urls_per_provider() -> None:
    gitlab = json.dumps(
        {
            "project": {
                "git_http_url": "https://gitlab.example.com/g/r.git",
                "git_ssh_url": "git@gitlab.example.com:g/r.git",
            }
        }
    )
    assert repository_urls("gitlab", gitlab.encode()) == {
        "https://gitlab.example.com/g/r.git",
        "git@gitlab.example.com:g/r.git",
    }
    assert repository_urls("github", BODY) == {"https://github.com/org/platform.git"}
    assert repository_urls("generic", b'{"url": "/srv/git/platform"}') == {"/srv/git/platform"}


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Org/platform.git",
        "https://user:token@github.com/Org/platform",
        "git@github.com:Org/platform.git",
        "ssh://git@github.com:22/Org/platform.git/",
        "HTTPS://GITHUB.COM/Org/platform",
    ],
)
def test_normalise_makes_one_repository_one_key(url: str) -> None:
    assert normalise(url) == "github.com/Org/platform"
