"""The YAML layer: go yaml.v3 typing, comments kept in place, and output every reader agrees on."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import given, settings

from tests.secrets.strategies import commented_documents, documents, typed
from tether.errors import SecretsError
from tether.render._yaml import load_yaml as render_load_yaml
from tether.secrets._tree import Branch, Comment, Pair, Timestamp, from_plain, to_plain
from tether.secrets._yaml import dump_yaml, load_yaml


def load(text: str) -> list[Branch]:
    return load_yaml(textwrap.dedent(text).lstrip("\n"), "test.yaml")


def plain(text: str) -> Any:
    return [to_plain(document) for document in load(text)]


def comments(branch: Branch) -> list[tuple[str, bool]]:
    return [(e.text, e.inline) for e in branch.entries if isinstance(e, Comment)]


def test_scalars_are_typed_like_sops_reads_them() -> None:
    [data] = plain(
        """
        on: yes
        n: 017
        port: 8080
        ratio: 1.0
        enabled: true
        date: 2024-01-01
        quoted: "017"
        block: |
          text
        nothing:
        """
    )
    assert typed(data) == {
        "on": ("str", "yes"),
        "n": ("int", 15),
        "port": ("int", 8080),
        "ratio": ("float", "1.0"),
        "enabled": ("bool", True),
        "date": ("str", "2024-01-01T00:00:00Z"),
        "quoted": ("str", "017"),
        "block": ("str", "text\n"),
        "nothing": ("NoneType", None),
    }
    [document] = load("date: 2024-01-01\n")
    assert document.get("date") == Timestamp("2024-01-01T00:00:00Z")


def test_key_order_is_kept() -> None:
    [data] = plain("z: 1\na: 2\nm: 3\n")
    assert list(data) == ["z", "a", "m"]


def test_comments_sit_between_the_entries_they_sat_between() -> None:
    [document] = load(
        """
        # head of a
        a: 1 # inline of a
        b:
            # head of c
            c: 2
            # foot of b
        # head of list
        list:
            # head of x
            - x # inline of x
            - y
        # foot of document
        """
    )
    assert comments(document) == [
        (" head of a", False),
        (" inline of a", True),
        (" head of list", False),
        (" foot of document", False),
    ]
    assert comments(document.get("b")) == [(" head of c", False), (" foot of b", False)]
    items = document.get("list")
    assert [(i.text, i.inline) if isinstance(i, Comment) else i for i in items] == [
        (" head of x", False),
        (" inline of x", True),
        "x",
        "y",
    ]


def test_comments_survive_a_round_trip_unchanged() -> None:
    text = textwrap.dedent(
        """\
        # head of a
        a: 1 #inline of a
        b:
            # head of c
            c: 2
            # foot of b
        list:
            # head of x
            - x #inline of x
            - k: v
              # head of l
              l: w
        empty: {} #inside empty
        last: 1
        # foot of document
        """
    )
    once = dump_yaml(load_yaml(text, "t"))
    assert once == text
    assert dump_yaml(load_yaml(once, "t")) == once
    [document] = load_yaml(text, "t")
    assert document.get("empty").entries == [Comment("inside empty", inline=True)]


def test_a_comment_after_nested_content_is_written_before_it() -> None:
    """go yaml.v3 (sops) would read it as part of the nested content, where its encryption
    (bound to the path of the collection it belongs to) would not match."""
    [document] = load("a: 1\nb:\n    c: [1]\n    # foot of b\n# foot of document\n")
    assert dump_yaml([document]) == (
        "a: 1\n# foot of document\nb:\n    # foot of b\n    c:\n        - 1\n"
    )


def test_multiple_documents_are_kept_apart() -> None:
    documents_ = load("a: 1\n# about b\n---\nb: 2\n---\n")
    assert [to_plain(d) for d in documents_] == [{"a": 1}, {"b": 2}, {}]
    assert dump_yaml(documents_) == "a: 1\n# about b\n---\nb: 2\n---\n{}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "test.yaml:2:1: key 'a' appears twice"),
        ("- a\n- b\n", "sequences are not supported"),
        ("just a string\n", "single values are not supported"),
        ("base: &b {x: 1}\nother:\n  <<: *b\n", "merge keys (<<) are not supported"),
        ("1: one\n", "the key '1' is a int; SOPS supports string keys only"),
        ("a: !custom x\n", "the YAML tag !custom is not supported"),
        ("a: [1, 2\n", "test.yaml:2:1: not valid YAML"),
        ("big: 18446744073709551615\n", "above 9223372036854775807"),
    ],
)
def test_unsupported_yaml_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(SecretsError) as caught:
        load_yaml(text, "test.yaml")
    assert message in str(caught.value)


def test_syntax_errors_do_not_quote_the_document() -> None:
    with pytest.raises(SecretsError) as caught:
        load_yaml('password: "hunter2\n', "s.yaml")
    assert "hunter2" not in str(caught.value)


RISKY_STRINGS = [
    "on",
    "yes",
    "y",
    "N",
    "off",
    "true",
    "null",
    "~",
    "",
    " ",
    "017",
    "0x1F",
    "1_000",
    "1e5",
    ".5",
    "1.0",
    "2024-01-01",
    "12:30",
    "<<",
    "=",
    "-",
    "- a",
    "? x",
    ": x",
    "a: b",
    "a #b",
    "#x",
    "@x",
    "`x",
    "!x",
    "&x",
    "*x",
    "|",
    ">",
    "%x",
    "'q'",
    '"q"',
    "[a]",
    "{a}",
    "...",
    "---",
    " lead",
    "trail ",
    "tab\there",
    "line\nbreak",
    "ends\n",
    "two\n\n",
    "\n",
    "\nlead",
    "  \nx",
    "x\n  indented\n",
    "\x00nul",
    "bell\a",
    "\x85nel",
    "\u2028ls",
    "\ufeffbom",
    "\u00a0nbsp",
    "emoji \U0001f600",
    "back\\slash",
    "é",
    "=x",
    "a,b",
    "ends:",
    "http://x/y",
    ".hidden",
]


@pytest.mark.parametrize("text", RISKY_STRINGS)
def test_strings_are_written_so_that_every_reader_reads_them_back(text: str) -> None:
    document = Branch([Pair("k", text), Pair(text, "value")])
    written = dump_yaml([document])
    assert typed(to_plain(load_yaml(written, "t")[0])) == typed({"k": text, text: "value"})
    # PyYAML (YAML 1.1) and the render piece read it the same way too.
    assert yaml.safe_load(written) == {"k": text, text: "value"}
    assert render_load_yaml(written)[0].data == {"k": text, text: "value"}


@settings(max_examples=150, deadline=None)
@given(documents())
def test_any_document_survives_writing_and_reading(data: dict[str, Any]) -> None:
    written = dump_yaml([from_plain(data)])
    [read] = load_yaml(written, "generated")
    assert typed(to_plain(read)) == typed(data)


@settings(max_examples=200, deadline=None)
@given(commented_documents())
def test_written_comments_are_read_back_where_they_were_written(document: Branch) -> None:
    once = dump_yaml(load_yaml(dump_yaml([document]), "t"))
    assert dump_yaml(load_yaml(once, "t")) == once
