"""tether.core.kubeyaml: Kubernetes' meaning of YAML scalars, keys and merges, document lines,
and the limits that stop hostile input (alias bombs, deep nesting, huge or many documents)
with a clear error instead of memory, time or a RecursionError.

The expected values below are what ``kubectl`` sends (checked against the real kubectl and API
server by tests/render/test_yaml_kubectl.py over a generated corpus).
"""

from __future__ import annotations

import json
import math
import resource
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yaml.nodes import MappingNode, ScalarNode

from tether.core import kubeyaml
from tether.core.kubeyaml import YamlLimitExceeded, YamlLimits, YamlProblem


def value_of(text: str) -> Any:
    data = kubeyaml.load(f"value: {text}\n")
    assert isinstance(data, dict)
    return data["value"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=", "="),  # PyYAML: "could not determine a constructor for ...:value"
        ("<<", "<<"),
        ("yes", True),
        ("Y", True),
        ("n", False),
        ("Off", False),
        ("oFF", "oFF"),
        ("~", None),
        ("", None),
        ("NULL", None),
        ("0x1F", 31),
        ("-0b101", -5),
        ("0o17", 15),
        ("010", 8),
        ("08", 8),  # not octal, so Go's float parser reads it
        ("1_000", 1000),
        ("0x_1F", 31),
        ("_1", "_1"),
        ("1,000", "1,000"),
        ("9223372036854775807", 9223372036854775807),
        ("9223372036854775808", 9223372036854776000),  # uint64, then a float64
        ("99999999999999999999999", 1e23),
        ("1e3", 1000),
        ("2.0", 2),
        ("1.5", 1.5),
        (".5", 0.5),
        ("1e-7", 1e-7),
        ("1e21", 1e21),
        ("1e400", "1e400"),  # out of float64 range: a string
        ("9" * 5000, "9" * 5000),  # likewise, and never handed to int()
        ("-0", 0),
        ("2024-01-01", "2024-01-01"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
        ("1:30", "1:30"),  # no base-60 numbers
        ("'yes'", "yes"),
        ('"0x10"', "0x10"),
        ("|-\n  true", "true"),
        ("!!str 123", "123"),
        ('!!int "0x10"', 16),
        ("!!float 1", 1),
        ("!!binary aGVsbG8=", "hello"),
        ("!custom text", "text"),
    ],
)
def test_scalars_as_kubectl_sends_them(text: str, expected: Any) -> None:
    value = value_of(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (".inf", "an infinite number cannot be sent as JSON"),
        (".nan", "NaN cannot be sent as JSON"),
        ("!!int abc", "cannot decode !!str `abc` as a !!int"),
        ("!!timestamp soon", "cannot decode !!str `soon` as a !!timestamp"),
        ("!!binary '%%'", "!!binary value contains invalid base64 data"),
        ("*nowhere", "names no anchor"),
    ],
)
def test_values_kubectl_refuses(text: str, problem: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        value_of(text)
    assert problem in caught.value.problem
    assert caught.value.line == 1


def test_keys_become_json_strings() -> None:
    data = kubeyaml.load("{1: a, yes: b, n: c, 1e6: d, 0.1: e, 1.5: f, 3.14159265: g, =: h}")
    assert data == {
        "1": "a",
        "true": "b",
        "false": "c",
        "1e+06": "d",
        "0.1": "e",
        "1.5": "f",
        "3.1415927": "g",  # go-yaml formats float keys as float32
        "=": "h",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{~: x}", "a mapping key that is null"),
        ("{[a]: x}", "a mapping key is a mapping or a sequence"),
        ("{18446744073709551615: x}", "beyond int64"),
        ("{a: 1, a: 2}", "found duplicate key 'a'"),
        ("{yes: 1, true: 2}", "the same key as 'yes'"),
        ("a: &a [*a]", "contains an alias to itself"),
        ("--- {a: 1}", "document separator (---) followed by content"),
        ("a:\n  " + "k" * 1100 + ": x", "if a key is longer than 1024 characters"),
    ],
)
def test_documents_refused(text: str, problem: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        kubeyaml.load_all(text + "\n")
    assert problem in caught.value.problem


def test_merge_keys_follow_go_yaml() -> None:
    text = """
    base: &base {a: 1, b: 2}
    other: &other {b: 20, c: 30}
    after: {<<: *base, b: 3}
    before: {b: 3, <<: *base}
    listed: {<<: [*base, *other]}
    quoted: {"<<": *base}
    """
    data = kubeyaml.load(text.replace("\n    ", "\n"))
    assert data["after"] == {"a": 1, "b": 3}
    assert data["before"] == {"a": 1, "b": 2}  # go-yaml v2 applies a merge where it stands
    assert data["listed"] == {"a": 1, "b": 2, "c": 30}  # earlier maps win
    assert data["quoted"] == {"<<": {"a": 1, "b": 2}}
    data["after"]["a"] = 99
    assert data["base"]["a"] == 1, "an alias is a copy, as go-yaml decodes it"


def test_documents_remember_their_lines() -> None:
    text = "# comment\n\nkind: A\n---\n---\napiVersion: v1\nkind: List\nitems:\n- a: 1\n-\n  b: 2\n"
    documents = kubeyaml.load_all(text)
    assert [document.line for document in documents] == [3, 5, 6]
    assert documents[1].data is None
    assert documents[2].item_lines == [9, 11]


def test_compose_resolves_tags_like_kubernetes() -> None:
    node = kubeyaml.compose("a: =\nb: 'x'\nc: 1e3\nd: yes\n")
    assert isinstance(node, MappingNode)
    tags = {key.value: value.tag for key, value in node.value}
    assert tags == {
        "a": kubeyaml.STR,
        "b": kubeyaml.STR,
        "c": kubeyaml.FLOAT,
        "d": kubeyaml.BOOL,
    }
    value = node.value[2][1]
    assert isinstance(value, ScalarNode)
    assert (value.start_mark.line, value.start_mark.column) == (2, 3)


# --- limits --------------------------------------------------------------------------------------


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def grown_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize("read", [kubeyaml.load_all, kubeyaml.compose_all, kubeyaml.check])
def test_alias_bomb_is_refused_without_expanding_it(read: Any) -> None:
    before = grown_kb()
    with pytest.raises(YamlLimitExceeded) as caught:
        read(alias_bomb())
    assert caught.value.line > 1
    assert caught.value.limit == "alias_ratio"
    assert "an alias bomb?" in caught.value.problem
    assert grown_kb() - before < 500 * 1024


def test_expanded_size_is_counted_without_expanding() -> None:
    # a small bomb stays under kubectl's alias ratio, and only the node limit stops it
    text = (
        "base: &b ["
        + ", ".join(["x"] * 50)
        + "]\n"
        + "".join(f"k{index}: *b\n" for index in range(40))
    )
    assert len(kubeyaml.load(text)) == 41
    with pytest.raises(YamlLimitExceeded) as caught:
        kubeyaml.load_all(text, YamlLimits(max_nodes=1000))
    assert caught.value.limit == "max_nodes"
    assert "YamlLimits.max_nodes" in caught.value.at("bomb.yaml")
    assert caught.value.at("bomb.yaml").startswith("bomb.yaml:")


@pytest.mark.parametrize(
    "text",
    [
        "".join("  " * depth + f"k{depth}:\n" for depth in range(5000)),
        "a: " + "[" * 900 + "]" * 900 + "\n",
        "a: " + "{b: " * 900 + "1" + "}" * 900 + "\n",
    ],
    ids=["block", "flow-sequences", "flow-mappings"],
)
def test_deep_nesting_is_a_clear_error_never_a_recursion_error(text: str) -> None:
    with pytest.raises(YamlLimitExceeded) as caught:
        kubeyaml.load_all(text)
    assert caught.value.limit == "max_depth"
    assert "deeper than 128 levels" in caught.value.problem


def test_depth_counts_aliases_expanded() -> None:
    text = "a0: &a0 [x]\n" + "".join(f"a{n}: &a{n} [*a{n - 1}]\n" for n in range(1, 200))
    with pytest.raises(YamlLimitExceeded) as caught:
        kubeyaml.load_all(text)
    assert caught.value.limit == "max_depth"
    assert caught.value.line == 128


def test_depth_within_the_limit_loads() -> None:
    text = "a: " + "[" * 127 + "]" * 127 + "\n"
    assert kubeyaml.load(text) is not None


def test_document_size_and_count_limits() -> None:
    big = "a: " + "x" * 5000 + "\n"
    with pytest.raises(YamlLimitExceeded) as caught:
        kubeyaml.load_all("small: 1\n---\n" + big, YamlLimits(max_document_chars=4096))
    assert (caught.value.limit, caught.value.line) == ("max_document_chars", 3)
    many = "---\na: 1\n" * 11
    with pytest.raises(YamlLimitExceeded) as caught:
        kubeyaml.load_all(many, YamlLimits(max_documents=10))
    assert (caught.value.limit, caught.value.line) == ("max_documents", 21)
    assert len(kubeyaml.load_all(many, YamlLimits(max_documents=11))) == 11


# --- properties ----------------------------------------------------------------------------------

printable = st.characters(whitelist_categories=("L", "N", "P", "S", "Zs"))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(printable)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(printable), children, max_size=4)
    ),
    max_leaves=20,
)


def as_sent(value: Any) -> Any:
    """What kubectl sends for a JSON value: numbers through Go's float64 formatting."""
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-6 or abs(value) >= 1e21):
            return value
        return int(Decimal(repr(value))) if value.is_integer() else value
    if isinstance(value, list):
        return [as_sent(item) for item in value]
    if isinstance(value, dict):
        return {key: as_sent(item) for key, item in value.items()}
    return value


@given(json_values)
def test_json_is_read_as_kubectl_reads_it(value: Any) -> None:
    loaded = kubeyaml.load(json.dumps({"value": value}, ensure_ascii=False))
    assert loaded == {"value": as_sent(value)}


@given(st.text(printable, max_size=30))
def test_quoted_strings_stay_strings(text: str) -> None:
    assert value_of(json.dumps(text, ensure_ascii=False)) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_plain_floats_round_trip(number: float) -> None:
    loaded = value_of(repr(number))
    assert math.isclose(loaded, number, rel_tol=0, abs_tol=0) or loaded == number


def test_dump_all_writes_a_shared_object_out_in_full_without_anchors() -> None:
    shared = {"type": "object", "properties": {"name": {"type": "string"}}}
    documents = [{"a": shared, "b": shared}, {"c": [shared, shared]}]
    text = kubeyaml.dump_all(documents)
    assert "&" not in text and "*" not in text
    assert text.count("type: object") == 4
    assert [document.data for document in kubeyaml.load_all(text)] == documents
    assert text.startswith("a:\n") and "\n---\n" in text  # block style, keys in the given order
