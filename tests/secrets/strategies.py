"""Hypothesis strategies for documents, and a strict comparison of typed values."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
# Keys that start with a line break are left out: go yaml.v3 (sops) writes them as complex block
# keys (`? |4-` followed by an empty line) that PyYAML cannot read back. docs/secrets.md lists it.
KEYS = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12).filter(
    lambda key: not key.startswith(("\n", "\r"))
)


def scalars(json: bool = False) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        INT64,
        st.floats(allow_nan=False, allow_infinity=not json),
        TEXT,
        st.sampled_from(["", "on", "yes", "no", "y", "n", "017", "1_000", "2024-01-01", "~"]),
    )


def values(json: bool = False) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(json),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(KEYS, children, max_size=4),
        ),
        max_leaves=16,
    )


def documents(json: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(KEYS.filter(lambda key: key != "sops"), values(json), max_size=5)


def typed(value: Any) -> Any:
    """``value`` with each scalar tagged by its type, so 1, 1.0 and True never compare equal."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


# --- trees with comments anywhere -----------------------------------------------------------

COMMENT_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\x85"),
    max_size=12,
)


def _comments() -> st.SearchStrategy[list[Any]]:
    from tether.secrets._tree import Comment

    return st.lists(st.builds(Comment, COMMENT_TEXT, st.booleans()), max_size=2)


def commented_values() -> st.SearchStrategy[Any]:
    """Trees (``Branch`` and lists) with comments before entries, inline ones and trailing ones."""
    from tether.secrets._tree import Branch, Pair

    leaves = st.one_of(st.none(), st.integers(-5, 5), st.sampled_from(["s", "on", "a b"]))

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        def branch(parts: list[tuple[list[Any], Any]], tail: list[Any]) -> Branch:
            entries: list[Any] = []
            for index, (comments, value) in enumerate(parts):
                entries += comments
                entries.append(Pair(f"k{index}", value))
            return Branch(entries + [c for c in tail if not c.inline])

        def sequence(parts: list[tuple[list[Any], Any]], tail: list[Any]) -> list[Any]:
            items: list[Any] = []
            for comments, value in parts:
                items += comments
                items.append(value)
            return items + [c for c in tail if not c.inline]

        parts = st.lists(st.tuples(_comments(), children), max_size=3)
        return st.one_of(
            st.builds(branch, parts, _comments()), st.builds(sequence, parts, _comments())
        )

    return st.recursive(leaves, extend, max_leaves=10)


def commented_documents() -> st.SearchStrategy[Any]:
    from tether.secrets._tree import Branch, Pair

    return st.builds(
        lambda head, value, tail: Branch([*head, Pair("root", value), *tail]),
        _comments(),
        commented_values(),
        _comments(),
    )
