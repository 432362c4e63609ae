"""Fuzzing (hypothesis) of what a tenant or a caller controls: the YAML loader, the SOPS JSON
reader, the masker of decrypted values and the agent's webhook endpoint (the real aiohttp app
on a loopback port). Each invariant could fail: only the documented error type escapes, a
webhook answers 2xx or 4xx, a masked value appears in no spelling.

CI runs a short bounded pass (a few seconds per test on two busy cores). A long run:

    TETHER_FUZZ_EXAMPLES=20000 .venv/bin/pytest -p no:cacheprovider tests/security/test_leaks_fuzz.py

(see docs/fuzzing.md).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.agent.conftest import free_port
from tether.agent.controller import Agent
from tether.agent.leader import LeaderElector
from tether.agent.server import build_app
from tether.agent.settings import AgentSettings
from tether.cluster.client import KubeClient
from tether.cluster.kubeconfig import Connection
from tether.core import kubeyaml
from tether.errors import SecretsError
from tether.notify.redact import go_quote
from tether.reconcile.decrypt import REDACTED, Redactor
from tether.secrets._json import load_json

EXAMPLES = int(os.environ.get("TETHER_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- the YAML loader -------------------------------------------------------------------------

YAML_PIECES = st.sampled_from(
    [
        "a: ",
        "- ",
        "&x ",
        "*x",
        "<<: ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "? ",
        ": ",
        "|\n",
        ">\n",
        "!!binary ",
        "!!str ",
        "!tag ",
        "'q'",
        '"\\u00e9"',
        "---\n",
        "...\n",
        "\n",
        "  ",
        "\t",
        "#c",
        "yes",
        "0x1F",
        "1e3",
        ".inf",
        "~",
        "=",
        "%YAML 1.1\n",
        "\ufeff",
        "\x00",
        "é",
    ]
)
YAML_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(YAML_PIECES, max_size=60).map("".join),
    st.integers(1, 400).map(lambda n: "a: " + "[" * n + "]" * n),
    st.integers(1, 400).map(lambda n: "".join("  " * i + f"k{i}:\n" for i in range(n))),
)
SMALL = kubeyaml.YamlLimits(max_document_chars=20_000, max_depth=64, max_nodes=5_000)


@FUZZ
@given(YAML_TEXT)
def test_fuzz_the_yaml_loader_raises_only_yaml_problems(text: str) -> None:
    for read in (kubeyaml.load_all, kubeyaml.compose_all, kubeyaml.check):
        try:
            read(text, SMALL)
        except kubeyaml.YamlProblem as problem:
            assert problem.problem and problem.line >= 0


@FUZZ
@given(st.integers(2, 12), st.integers(2, 9))
def test_fuzz_alias_bombs_are_counted_not_expanded(levels: int, width: int) -> None:
    lines = ["a0: &a0 [x]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    text = "\n".join(lines) + "\n"
    expanded = sum(width**level for level in range(levels))  # the last list alone, roughly
    try:
        kubeyaml.load_all(text, SMALL)
    except kubeyaml.YamlProblem:
        return
    assert expanded <= SMALL.max_nodes * 2


# -- the SOPS JSON reader --------------------------------------------------------------------

JSON_TEXT = st.one_of(
    st.text(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=30,
    ).map(json.dumps),
    st.integers(1, 3000).map(lambda n: '{"a": ' + "[" * n + "]" * n + "}"),
)


@FUZZ
@given(JSON_TEXT)
def test_fuzz_the_sops_json_reader_raises_only_secrets_errors(text: str) -> None:
    try:
        load_json(text, "fuzz.json")
    except SecretsError as error:
        assert str(error).startswith("fuzz.json")


# -- the masker ------------------------------------------------------------------------------

SECRET_CHARS = st.characters(
    codec="utf-8", categories=("Lu", "Nd", "Zs", "Po", "Cc", "Ll", "Lo"), exclude_characters="*()"
)
SECRET = st.text(SECRET_CHARS, min_size=4, max_size=24).filter(
    lambda v: v not in REDACTED and v.strip() == v and len(set(v)) > 2
)
AROUND = st.text(st.sampled_from(" :;,.[]{}<>=-_/\n"), max_size=20)


def spelled(value: str, how: str) -> str:
    """``value`` as a server, a JSON body, a URL or a Secret would show it (written here
    independently of the masker under test)."""
    raw = value.encode()
    return {
        "raw": value,
        "json": json.dumps(value)[1:-1],
        "json-ascii": json.dumps(value, ensure_ascii=True)[1:-1],
        "json-twice": json.dumps(json.dumps(value)[1:-1])[1:-1],
        "go": go_quote(value),
        "url": quote(value, safe=""),
        "form": quote_plus(value),
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "base64-inside": base64.b64encode(b"user=admin;pass=" + raw + b";").decode(),
    }[how]


HOW = st.sampled_from(
    ["raw", "json", "json-ascii", "json-twice", "go", "url", "form", "base64", "base64url"]
)


@FUZZ
@given(SECRET, HOW, AROUND, AROUND)
def test_fuzz_the_masker_leaves_no_spelling_of_a_decrypted_value(
    value: str, how: str, before: str, after: str
) -> None:
    redactor = Redactor()
    redactor.add(value)
    shown = spelled(value, how)
    scrubbed = redactor.scrub(f"{before}Invalid value: {shown}{after}")
    assert shown not in scrubbed
    assert value not in scrubbed
    assert REDACTED in scrubbed


@FUZZ
@given(st.text(SECRET_CHARS, min_size=6, max_size=24).filter(lambda v: len(set(v)) > 3))
def test_fuzz_the_masker_finds_a_value_inside_a_longer_base64_text(value: str) -> None:
    redactor = Redactor()
    redactor.add(value)
    for prefix in (b"", b"k", b"ke", b"key"):
        encoded = base64.b64encode(prefix + value.encode() + b"\n").decode()
        scrubbed = redactor.scrub(f"data: {encoded}")
        assert REDACTED in scrubbed and encoded not in scrubbed


# -- the webhook endpoint --------------------------------------------------------------------

HOOK_SECRET = b"fuzz-webhook-secret"


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client]]:
    """The agent's real aiohttp app on a loopback port, as the leader of an empty fleet (so a
    call needs no Kubernetes API: nothing else is a stand-in)."""
    port = free_port()
    ready, stop = threading.Event(), threading.Event()
    audit = tmp_path_factory.mktemp("fuzz") / "audit.db"

    async def serve() -> None:
        connection = Connection(server="https://127.0.0.1:1", context="fuzz")
        agent = Agent(connection, AgentSettings(identity="fuzz", audit_url=str(audit)))
        lease_client = KubeClient(connection)
        elector = LeaderElector(lease_client, "tether-system", "fuzz", "fuzz")
        elector.is_leader = True
        runner = web.AppRunner(build_app(agent, elector, HOOK_SECRET), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await runner.cleanup()
        await lease_client.close()
        await agent.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    with httpx.Client(timeout=30) as client:
        yield f"http://127.0.0.1:{port}", client
    stop.set()
    thread.join(30)


HEADER_NAMES = st.sampled_from(
    [
        "X-Hub-Signature-256",
        "X-Gitea-Signature",
        "X-Gitlab-Token",
        "X-Tether-Signature",
        "X-GitHub-Delivery",
        "X-Gitea-Delivery",
        "Idempotency-Key",
        "X-Tether-Delivery",
        "Content-Type",
        "Content-Encoding",
    ]
)
HEADER_VALUES = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F).strip(b" ") or b"x"
)
BODIES = st.one_of(
    st.binary(max_size=300),
    JSON_TEXT.map(str.encode),
    st.just(b"payload=%7B%7D"),
    st.just(b'{"repository": {"clone_url": "https://git.example.com/o/r.git"}}'),
)


def signature_headers(provider: str, body: bytes) -> dict[str, bytes]:
    digest = hmac.new(HOOK_SECRET, body, hashlib.sha256).hexdigest().encode()
    return {
        "github": {"X-Hub-Signature-256": b"sha256=" + digest},
        "gitea": {"X-Gitea-Signature": digest},
        "gitlab": {"X-Gitlab-Token": HOOK_SECRET},
        "generic": {"X-Tether-Signature": b"sha256=" + digest},
    }.get(provider, {})


@FUZZ
@given(
    provider=st.sampled_from(["github", "gitlab", "gitea", "generic", "bitbucket", "é", "%2e"]),
    body=BODIES,
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
    signed=st.booleans(),
)
def test_fuzz_the_webhook_answers_2xx_or_4xx_never_5xx(
    hook: tuple[str, httpx.Client],
    provider: str,
    body: bytes,
    headers: dict[str, bytes],
    signed: bool,
) -> None:
    url, client = hook
    sent = {**headers, **(signature_headers(provider, body) if signed else {})}
    answer = client.post(f"{url}/hooks/{provider}", content=body, headers=sent)
    assert 200 <= answer.status_code < 500, (answer.status_code, answer.text)
    if not signed and provider in ("github", "gitea", "generic"):
        assert answer.status_code in (400, 401, 404, 415), answer.status_code


def test_the_replay_memory_stays_bounded() -> None:
    from tether.agent.webhooks import Deliveries

    deliveries = Deliveries(capacity=100)
    for n in range(10_000):
        deliveries.remember("github", f"id-{n}")
    assert len(deliveries) == 100
    assert deliveries.seen("github", "id-9999") and not deliveries.seen("github", "id-0")


def test_the_long_run_is_documented() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "fuzzing.md"
    assert "TETHER_FUZZ_EXAMPLES" in docs.read_text()
