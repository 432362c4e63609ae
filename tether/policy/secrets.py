"""Finding secrets in files before they reach Git history, without crying wolf.

``scan(path, text)`` reports, with the line of each:

- Secret objects whose ``data``/``stringData`` hold values that are not SOPS-encrypted
  (``ENC[AES256_GCM,…]``; a document with a top-level ``sops:`` key is an encrypted file and its
  ``sops`` metadata is never scanned);
- private keys (PEM ``-----BEGIN … PRIVATE KEY-----``, also base64-wrapped, and age identities);
- tokens of well-known shapes: GitHub, AWS access key ids, Slack, Google API keys, JWTs;
- literal values of keys named like credentials (``password``, ``apiToken``, ``DB_PASSWORD`` in
  an env entry, ``--password=…`` in args, ``user:pass@`` in URLs), placeholders excepted;
- long random-looking strings (Shannon entropy above a length-dependent threshold, with the mix
  of character classes random strings have and words do not).

Look-alikes are not reported: SOPS values, public keys (ssh, PEM public keys and certificates,
age recipients), digests (``sha256:…``, image ``@sha256:…``, hex under checksum-like keys such as
``checksum/config``), UUIDs, SealedSecret ciphertext. Findings never contain the secret; their
fingerprint is derived from it, so an allowlist entry survives line moves.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tether.core import kubeyaml
from tether.policy.findings import Finding, fingerprint
from tether.policy.rules import RULES

MAX_BYTES = 1_000_000
_STRING_TAG = "tag:yaml.org,2002:str"
_YAML_SUFFIXES = (".yaml", ".yml", ".json")

# -- look-alikes, removed before anything else looks at a line --------------------------------
_LOOKALIKES = re.compile(
    r"""
      ENC\[[A-Za-z0-9_]+,[^\]]*\]                                     # a SOPS value
    | (?:sha1|sha224|sha256|sha384|sha512|md5):[0-9a-fA-F]{32,128}    # a digest (images, OCI)
    | \b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b  # a UUID
    | (?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp(?:256|384|521)
        |sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+AAAA[0-9A-Za-z+/]+={0,3}  # ssh pub
    | \bage1[02-9ac-hj-np-z]{58}\b                                    # an age recipient
    """,
    re.VERBOSE,
)
_SOPS_VALUE = re.compile(r"^ENC\[[A-Za-z0-9_]+,.*\]$", re.DOTALL)

# -- PEM blocks ---------------------------------------------------------------------------------
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_PEM_END = re.compile(r"-----END ([A-Z0-9 ]+)-----")
_AGE_IDENTITY = re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")
_BASE64_PEM = re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/=]{8,}")

# -- tokens of well-known shapes --------------------------------------------------------------
_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b")),
    ("GitHub token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{60,}")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")),
    ("Slack token", re.compile(r"\bxox[bpas]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),
    ("JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
)
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s:@]+):([^/\s@]+)@")

# -- credentials by name ----------------------------------------------------------------------
_CREDENTIAL_WORDS = {"password", "passwd", "pwd", "passphrase", "secret", "token", "apikey"}
_CREDENTIAL_WORDS |= {"credential", "credentials"}
_CREDENTIAL_PAIRS = {"apikey", "accesskey", "secretkey", "privatekey", "clientsecret"}
_CREDENTIAL_PAIRS |= {"authtoken", "accesstoken", "refreshtoken", "bearertoken", "sessiontoken"}
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_PLACEHOLDER = re.compile(
    r"""^(?:
        \$\{[^}]*\} | \$\([^)]*\) | \$[A-Za-z_][A-Za-z0-9_]* | \{\{.*\}\} | <[^>]*>
      | %\([^)]*\)s | ref\+[a-z0-9]+://.* | (?:vault|secretref|sm|awssm|gcpsm):.*
      | [*xX.#_-]+
      | (?i:redacted|changeme|change[-_]me|replace[-_]?me|todo|tbd|none|null|nil|example
          |placeholder|secret|password|token|dummy|fake|test|true|false|yes|no|on|off
          |enabled|disabled|required|optional|unset|empty)
    )$""",
    re.VERBOSE,
)
_EMBEDDED_PAIR = re.compile(r"(?:^|[\s,;&?])-{0,2}([A-Za-z_][A-Za-z0-9_.\-]*)=([^\s,;&]+)")
_LINE_PAIR = re.compile(
    r"""^\s*(?:-\s+)?(?:export\s+)?["']?([A-Za-z0-9_.\-/]+)["']?\s*(?::|=)\s*(.*?)\s*$"""
)

# -- keys whose values are public or are digests ----------------------------------------------
_PUBLIC_KEY_WORDS = (
    "checksum",
    "digest",
    "sha",
    "hash",
    "fingerprint",
    "integrity",
    "etag",
    "revision",
    "commit",
    "cabundle",
    "certificate",
    "cert",
    "crt",
    "pubkey",
    "publickey",
    "public",
    "knownhosts",
    "recipient",
    "uid",
    "resourceversion",
    "encrypteddata",
)

# -- randomness ---------------------------------------------------------------------------------
_CANDIDATE = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` (0 for an empty string)."""
    if not text:
        return 0.0
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in Counter(text).values())


def _mixed_threshold(length: int) -> float:
    """Entropy a random base62/base64 string of ``length`` exceeds about 95% of the time."""
    if length < 24:
        return 3.8
    if length < 32:
        return 4.0
    if length < 40:
        return 4.25
    if length < 64:
        return 4.5
    return 4.8


def _lower_threshold(length: int) -> float:
    if length < 32:
        return 3.7
    if length < 40:
        return 3.95
    return 4.2


def _switch_ratio(text: str) -> float:
    """How often adjacent characters change class (case for letters, letter/digit otherwise)."""

    def kind(char: str) -> str:
        if char.isdigit():
            return "d"
        if char.isupper():
            return "u"
        if char.islower():
            return "l"
        return "o"

    kinds = [kind(c) for c in text if kind(c) != "o"]
    if len(kinds) < 2:
        return 0.0
    switches = sum(1 for a, b in itertools.pairwise(kinds) if a != b)
    return switches / (len(kinds) - 1)


def random_looking(candidate: str) -> bool:
    """Whether ``candidate`` looks like random key material rather than words or a digest."""
    core = candidate.strip("=")
    length = len(core)
    if _HEX.fullmatch(core):
        return length >= 32 and shannon_entropy(core) >= 3.0
    upper = any(c.isupper() for c in core)
    lower = any(c.islower() for c in core)
    digit = any(c.isdigit() for c in core)
    if upper and lower and digit and length >= 20:
        if _switch_ratio(core) < 0.3:
            return False
        return shannon_entropy(core) >= _mixed_threshold(length)
    if lower and digit and not upper and length >= 24:
        if _switch_ratio(core) < 0.25:
            return False
        return shannon_entropy(core) >= _lower_threshold(length)
    return False


def credential_key(key: str) -> bool:
    """Whether ``key`` names a credential: ``password``, ``db_password``, ``apiToken``,
    ``AWS_SECRET_ACCESS_KEY``, ``clientSecret`` (not ``secretName``, ``tokenFile``)."""
    words = [
        word.lower() for part in re.split(r"[^A-Za-z0-9]+", key) for word in _CAMEL.findall(part)
    ]
    if not words:
        return False
    if words[-1] in _CREDENTIAL_WORDS:
        return True
    return "".join(words[-2:]) in _CREDENTIAL_PAIRS


def literal_value(value: str) -> bool:
    """Whether ``value`` is a literal secret rather than a reference or a placeholder."""
    value = value.strip().strip("\"'").strip()
    if len(value) < 3 or _PLACEHOLDER.match(value) or _SOPS_VALUE.match(value):
        return False
    if value.startswith(("/", "./", "file:", "http://", "https://")) and "@" not in value:
        return False
    return not (" " in value and len(value.split()) > 3)


def _public_context(keys: tuple[str, ...]) -> bool:
    """Whether the key path says the value is public or a digest (``checksum/config``, …)."""
    for key in keys[-2:]:
        squashed = re.sub(r"[^a-z0-9]", "", key.lower())
        if any(word in squashed for word in _PUBLIC_KEY_WORDS):
            return True
    return False


# -- the values of a file -----------------------------------------------------------------------


@dataclass
class _Value:
    """One value to examine: its key path, its source lines and its parsed text."""

    keys: tuple[str, ...]
    lines: list[tuple[int, str]]
    text: str = ""
    literal: bool = False

    @property
    def key(self) -> str:
        return self.keys[-1] if self.keys else ""


@dataclass
class _Scan:
    path: str
    findings: list[Finding] = field(default_factory=list)
    seen: set[tuple[str, int]] = field(default_factory=set)

    def add(self, rule_id: str, line: int, message: str, subject: str, material: str) -> None:
        if (rule_id, line) in self.seen:
            return
        self.seen.add((rule_id, line))
        rule = RULES[rule_id]
        self.findings.append(
            Finding(
                rule_id,
                self.path,
                message,
                line,
                rule.severity,
                rule.hint,
                subject=subject,
                fingerprint=fingerprint(rule_id, self.path, material),
            )
        )


def scan(path: str, text: str) -> list[Finding]:
    """Every secret finding in one file (``path`` relative to the repository root)."""
    if "\x00" in text[:8192] or len(text) > MAX_BYTES:
        return []
    state = _Scan(path)
    values: list[_Value] | None = None
    if PurePosixPath(path).suffix.lower() in _YAML_SUFFIXES:
        values = _yaml_values(text, state)
    if values is None:
        whole = _Value((), list(enumerate(text.splitlines(), start=1)))
        outside = {number for number, _ in _pem_blocks(whole, state)}
        values = [value for value in _line_values(text) if value.lines[0][0] in outside]
    for value in values:
        _examine(value, state)
    return state.findings


def _line_values(text: str) -> Iterator[_Value]:
    """A value per line, keyed when the line reads ``key: value`` or ``KEY=value``."""
    lines = list(enumerate(text.splitlines(), start=1))
    for number, line in lines:
        match = _LINE_PAIR.match(line)
        if match and match.group(1).lower().startswith("sops_"):
            continue  # the metadata of a SOPS-encrypted dotenv file
        if match:
            value = _unquote(_strip_comment(match.group(2)))
            yield _Value((match.group(1),), [(number, line)], value, literal=True)
        else:
            yield _Value((), [(number, line)], line)


def _strip_comment(value: str) -> str:
    return re.split(r"\s+#", value, maxsplit=1)[0]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _yaml_values(text: str, state: _Scan) -> list[_Value] | None:
    """The scalar values of a YAML/JSON file, or None when it does not parse."""
    try:
        documents = kubeyaml.compose_all(text)
    except kubeyaml.YamlProblem:  # unreadable or beyond the limits: scanned line by line
        return None
    lines = text.splitlines()
    values: list[_Value] = []
    for document in documents:
        if document is None:
            continue
        skip: set[int] = set()
        if isinstance(document, MappingNode):
            _secret_object(document, state, skip)
            sops = _get(document, "sops")
            if sops is not None:
                skip.add(id(sops))
        _walk(document, (), lines, values, skip, set())
    return values


def _get(node: MappingNode, key: str) -> Node | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node if isinstance(value_node, Node) else None
    return None


def _scalar(node: MappingNode, key: str) -> str:
    found = _get(node, key)
    return str(found.value) if isinstance(found, ScalarNode) else ""


def _walk(
    node: Node,
    keys: tuple[str, ...],
    lines: list[str],
    values: list[_Value],
    skip: set[int],
    visited: set[int],
) -> None:
    if id(node) in skip or id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, ScalarNode):
        values.append(_scalar_value(node, keys, lines))
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _walk(item, keys, lines, values, skip, visited)
    elif isinstance(node, MappingNode):
        env_name = _scalar(node, "name") if _get(node, "value") is not None else ""
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, ScalarNode) else ""
            if key == "value" and env_name:
                key = env_name  # an env entry: {name: DB_PASSWORD, value: …}
            _walk(value_node, (*keys, key), lines, values, skip, visited)


def _scalar_value(node: ScalarNode, keys: tuple[str, ...], lines: list[str]) -> _Value:
    first, last = node.start_mark.line, node.end_mark.line
    if node.style in ("|", ">"):
        first += 1
    if last > first and node.end_mark.column == 0:
        last -= 1
    last = max(first, min(last, len(lines) - 1))
    source = [
        (number + 1, lines[number]) for number in range(first, last + 1) if number < len(lines)
    ]
    if len(source) == 1 and node.style not in ("|", ">"):
        source = [(source[0][0], str(node.value))]
    literal = node.tag == _STRING_TAG and "\n" not in node.value.strip()
    return _Value(keys, source, str(node.value), literal)


def _secret_object(document: MappingNode, state: _Scan, skip: set[int]) -> None:
    """Report a Secret whose data/stringData values are not SOPS-encrypted."""
    if _scalar(document, "kind") != "Secret" or not _scalar(document, "apiVersion").startswith(
        "v1"
    ):
        return
    metadata = _get(document, "metadata")
    name = _scalar(metadata, "name") if isinstance(metadata, MappingNode) else ""
    encrypted_file = _get(document, "sops") is not None
    clear: list[str] = []
    first_line = 0
    material: list[str] = [name]
    for field_name in ("data", "stringData"):
        section = _get(document, field_name)
        if not isinstance(section, MappingNode):
            continue
        for key_node, value_node in section.value:
            if not isinstance(value_node, ScalarNode):
                continue
            value = str(value_node.value).strip()
            if not value or _SOPS_VALUE.match(value):
                continue
            skip.add(id(value_node))
            if encrypted_file:
                continue  # left in clear on purpose (sops unencrypted_suffix/regex)
            clear.append(str(key_node.value))
            material.append(f"{key_node.value}={value}")
            first_line = first_line or key_node.start_mark.line + 1
    if clear:
        state.add(
            "secret-cleartext",
            first_line,
            f"Secret {name!r} holds {len(clear)} value(s) in cleartext (keys: "
            f"{', '.join(clear)}); anyone who can read the repository can read them",
            f"Secret/{name}",
            "\n".join(material),
        )


# -- examining one value ------------------------------------------------------------------------


def _examine(value: _Value, state: _Scan) -> None:
    if value.literal and _SOPS_VALUE.match(value.text.strip()):
        return
    if "encryptedData" in value.keys:  # a SealedSecret: ciphertext only the cluster can open
        return
    remaining = _pem_blocks(value, state)
    reported = False
    for number, line in remaining:
        reported |= _examine_line(number, line, value, state, multiline=len(value.lines) > 1)
    if (
        len(value.lines) == 1
        and value.literal
        and credential_key(value.key)
        and literal_value(value.text)
        and not reported
    ):
        number = value.lines[0][0]
        state.add(
            "secret-generic",
            number,
            f"{value.key!r} is set to a literal value",
            value.key,
            f"{value.key}={value.text}",
        )


def _pem_blocks(value: _Value, state: _Scan) -> list[tuple[int, str]]:
    """Report private keys; return the lines outside every PEM block."""
    remaining: list[tuple[int, str]] = []
    inside: str | None = None
    for number, line in value.lines:
        if inside is not None:
            end = _PEM_END.search(line)
            if end and end.group(1) == inside:
                inside = None
            continue
        begin = _PEM_BEGIN.search(line)
        if begin is None:
            remaining.append((number, line))
            continue
        label = begin.group(1)
        if "PRIVATE KEY" in label:
            body = line[begin.end() :].strip() or _next_line(value, number)
            state.add(
                "secret-private-key",
                number,
                f"a private key in cleartext ({label} block)",
                label,
                body[:64] or f"{number}",
            )
        inside = label
        rest = line[begin.end() :]
        if _PEM_END.search(rest):
            inside = None
    return remaining


def _next_line(value: _Value, number: int) -> str:
    for candidate, line in value.lines:
        if candidate > number:
            return line.strip()
    return ""


def _examine_line(number: int, line: str, value: _Value, state: _Scan, multiline: bool) -> bool:
    """Report what one line holds; True when it reported something."""
    before = len(state.findings)
    text = _LOOKALIKES.sub(" ", line)
    identity = _AGE_IDENTITY.search(text)
    if identity:
        state.add(
            "secret-private-key", number, "an age identity (private key)", "age", identity.group(0)
        )
        text = text.replace(identity.group(0), " ")
    for match in _BASE64_PEM.finditer(text):
        if _decodes_to_private_key(match.group(0)):
            state.add(
                "secret-private-key",
                number,
                "a base64-encoded private key",
                "private key",
                match.group(0)[:96],
            )
        text = text.replace(match.group(0), " ")  # a wrapped certificate or public key
    for name, pattern in _TOKENS:
        for match in pattern.finditer(text):
            token = match.group(0)
            if name == "AWS access key id" and token.endswith("EXAMPLE"):
                continue
            if name == "JSON Web Token" and not _is_jwt(token):
                continue
            state.add("secret-token", number, f"{name} in cleartext", name, token)
        text = pattern.sub(" ", text)
    for match in _URL_CREDENTIALS.finditer(text):
        if literal_value(match.group(2)):
            state.add(
                "secret-generic",
                number,
                "a URL with a password in it",
                "URL credentials",
                match.group(0),
            )
        text = text.replace(match.group(0), " ")
    text = _embedded_pairs(number, text, value, state, multiline)
    if not _public_context(value.keys) and not (
        value.literal and credential_key(value.key) and literal_value(value.text)
    ):
        for match in _CANDIDATE.finditer(text):
            candidate = match.group(0)
            if random_looking(candidate):
                state.add(
                    "secret-high-entropy",
                    number,
                    f"a random-looking string of {len(candidate)} characters "
                    f"(entropy {shannon_entropy(candidate.strip('=')):.1f} bits/char)"
                    + (f" under {value.key!r}" if value.key else ""),
                    value.key,
                    candidate,
                )
                break
    return len(state.findings) > before


def _embedded_pairs(number: int, text: str, value: _Value, state: _Scan, multiline: bool) -> str:
    """Report ``password=…`` inside a value (args, generator literals, config blocks)."""
    pairs: list[tuple[str, str, str]] = [
        (m.group(1), m.group(2), m.group(0)) for m in _EMBEDDED_PAIR.finditer(text)
    ]
    if multiline:
        match = _LINE_PAIR.match(text)
        if match:
            pairs.append((match.group(1), _unquote(_strip_comment(match.group(2))), text))
    for key, literal, whole in pairs:
        if key == value.key and not multiline:
            continue
        if credential_key(key) and literal_value(literal):
            state.add(
                "secret-generic",
                number,
                f"{key!r} is set to a literal value",
                key,
                f"{key}={literal}",
            )
            text = text.replace(whole, " ")
    return text


def _decodes_to_private_key(candidate: str) -> bool:
    try:
        decoded = base64.b64decode(candidate + "=" * (-len(candidate) % 4), validate=False)
    except (binascii.Error, ValueError):
        return False
    return b"PRIVATE KEY" in decoded[:64]


def _is_jwt(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        data = json.loads(decoded)
    except (binascii.Error, ValueError, RecursionError):  # a header nested 1000 deep is no JWT
        return False
    return isinstance(data, dict) and ("alg" in data or "typ" in data)
