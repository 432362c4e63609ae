"""A generated corpus of YAML scalar forms, each in a small document, to compare Tether's reading
of YAML with kubectl's (see test_yaml_kubectl.py and tests/core/test_kubeyaml.py).

Every scalar spelling below is put into every form (plain, single- and double-quoted, literal
and folded block, flow and block sequence item, mapping key, quoted key), plus documents for
merge keys, duplicate keys, very long keys, tags and anchors. A case is the ``spec`` of one
custom object, so its values reach the API server whatever their type.
"""

from __future__ import annotations

from dataclasses import dataclass


def _words(text: str) -> list[str]:
    return text.split()


BOOLS = [
    *_words("y Y yes Yes YES yEs true True TRUE tRUE on On ON oN"),
    *_words("n N no No NO nO false False FALSE off Off OFF oFF"),
]
NULLS = ["~", "null", "Null", "NULL", "nULL", "~~"]
INTS = [
    *_words("0 -0 +0 1 -1 +1 007 08 09 010 0o17 0O17 0o8 0o 0x1F 0X1f -0x1f +0x1F 0x 0xG"),
    *_words("0b101 -0b101 0B11 0b2 1_000 1__0 _1 1_ +_1 0x_1F 0_7 1,000 123abc"),
    *_words("9223372036854775807 9223372036854775808 -9223372036854775808"),
    *_words("-9223372036854775809 18446744073709551615 18446744073709551616"),
    "99999999999999999999999",
]
FLOATS = [
    *_words("1.5 -1.5 +1.5 1. .5 -.5 +.5 1e3 1E3 1e+3 1e-3 1.5e3 1e-7 1e21 1e20 1e400 1e-400"),
    *_words("2.0 1_000.5 0.1 3.14159265358979323846 6.02e23 1.0e+3 0x1p3 1:30 190:20:30.15"),
    *_words(".inf .Inf .INF -.inf +.inf .iNf inf nan .nan .NaN .NAN .5_5 ._5 1e e3 0.5e"),
]
TIMESTAMPS = [
    "2024-01-01",
    "2024-1-1",
    "2024-01-01T10:00:00Z",
    "2024-01-01t10:00:00Z",
    "2024-01-01T10:00:00.123456789123+05:00",
    "2024-01-01 10:00:00",
    "2024-01-01   10:00:00.5",
    "2024-13-01",
    "2024-02-30",
    "2024-02-29",
    "2001-12-14 21:59:43.10 -5",
    "2024-01-01T25:00:00Z",
    "2024-01-01T10:00:00",
]
OTHERS = [
    *_words("= == << - + . .. ... @x %x v1 1h 10Mi 0.5Gi 500m 1e3Mi 0.0.1 1.2.3 True1 yes! ~a"),
    "a b",
    "foo # not a comment?",
    "Ünïcödé",
]
SCALARS = [*BOOLS, *NULLS, *INTS, *FLOATS, *TIMESTAMPS, *OTHERS]

# Forms that are not valid YAML for some scalars (a plain scalar cannot start with @ or %, a
# flow item cannot hold ", "...) are kept: kubectl and Tether must then both refuse them.
FORMS = {
    "plain": "value: {s}\n",
    "single": "value: '{s}'\n",
    "double": 'value: "{s}"\n',
    "literal": "value: |-\n  {s}\n",
    "folded": "value: >-\n  {s}\n",
    "flow-item": "value: [{s}]\n",
    "block-item": "value:\n- {s}\n",
    "key": "value:\n  {s}: x\n",
    "quoted-key": "value:\n  '{s}': x\n",
}

SPECIAL = {
    "empty-value": "value:\n",
    "empty-flow": "value: {a: , b: []}\n",
    "merge": "base: &b {a: 1, b: 2}\nvalue:\n  <<: *b\n  b: 3\n",
    "merge-after-key": "base: &b {a: 1, b: 2}\nvalue:\n  b: 3\n  <<: *b\n",
    "merge-list": "x: &x {a: 1}\ny: &y {a: 2, b: 2}\nvalue:\n  <<: [*x, *y]\n",
    "merge-inline": "value:\n  <<: {a: 1}\n  c: 2\n",
    "merge-quoted": "value:\n  '<<': {a: 1}\n",
    "merge-tagged": "value:\n  !!merge <<: {a: 1}\n",
    "merge-scalar": "value:\n  <<: 1\n",
    "anchor-alias": "a: &a [1, 2]\nvalue: {x: *a, y: *a}\n",
    "anchor-scalar-key": "k: &k 10\nvalue: {*k : x}\n",
    "duplicate": "value: {a: 1, a: 2}\n",
    "duplicate-spelled": "value: {1: a, '1': b}\n",
    "duplicate-bool": "value: {yes: a, true: b}\n",
    "long-key-1024": "value: {" + "k" * 1020 + ": x}\n",
    "long-key-1100": "value:\n  " + "k" * 1100 + ": x\n",
    "long-quoted-key": "value:\n  '" + "k" * 1100 + "': x\n",
    "tag-str": "value: !!str 123\n",
    "tag-int": 'value: !!int "0x10"\n',
    "tag-int-bad": "value: !!int abc\n",
    "tag-float": "value: !!float 1\n",
    "tag-float-bad": "value: !!float 1e400\n",
    "tag-bool": "value: !!bool yes\n",
    "tag-null": 'value: !!null ""\n',
    "tag-timestamp": "value: !!timestamp 2024-01-01\n",
    "tag-timestamp-bad": "value: !!timestamp abc\n",
    "tag-binary": "value: !!binary aGVsbG8gd29ybGQ=\n",
    "tag-binary-bad": "value: !!binary '%%%'\n",
    "tag-custom": "value: !custom x\n",
    "tag-nonspecific": "value: ! 12\n",
    "tag-seq-on-scalar": "value: !!seq x\n",
    "null-key": "value: {~: x}\n",
    "float-keys": "value: {1.5: a, 1e6: b, 0.1: c, -0.0: e, 1e39: f, 3.14159265: g, 1e-5: h}\n",
    "inf-key": "value: {.inf: d, -.inf: e, .nan: f}\n",
    "timestamp-key": "value: {2024-01-01: x}\n",
    "uint-key": "value: {18446744073709551615: x}\n",
    "collection-key": "value: {[a]: x}\n",
    "multiline-plain": "value: a\n  b\n\n  c\n",
    "tab-value": "value: \t1\n",
    "comment-after": "value: 1 # comment\n",
}


@dataclass(frozen=True)
class Case:
    """One document body, to go under ``spec:`` of an object named ``name``."""

    name: str
    body: str


def cases() -> list[Case]:
    """Every case, with a DNS-1123 name (``c-<index>``) and a readable ``label``."""
    bodies: list[tuple[str, str]] = []
    for scalar in SCALARS:
        for form, template in FORMS.items():
            bodies.append((f"{form} {scalar!r}", template.format(s=scalar)))
    bodies += list(SPECIAL.items())
    return [Case(label, body) for label, body in bodies]


def document(name: str, namespace: str, body: str, kind: str = "Carrier") -> str:
    """A whole custom object whose ``spec`` is ``body`` (indented under it)."""
    indented = "".join(f"  {line}\n" if line else "\n" for line in body.splitlines())
    return (
        f"apiVersion: yaml.tether.dev/v1\nkind: {kind}\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\nspec:\n{indented}"
    )
