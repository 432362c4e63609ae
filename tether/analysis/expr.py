"""Argo Rollouts' conditions (the expr language) translated to CEL, for the common shapes only.

Templates ported from Argo Rollouts write conditions such as ``result[0] >= 0.95`` or
``result.ok && result.successPercent >= 0.90`` in expr (github.com/expr-lang/expr). The subset
below means the same in both languages once a few words are renamed, so it is translated token
by token; anything else is refused with the metric named and the CEL to write instead
(docs/analysis.md, docs/decisions/0018-analysis-measurements-and-verdicts.md):

    result, result[0], result.field, result["field"]    as in CEL
    numbers, 'strings', "strings", true, false          as in CEL
    nil                                                 null
    == != < <= > >= + - * / ( )                         as in CEL
    && || !   and or not                                && || !
    len(x)                                              dyn(size(x))
    asFloat(x)  asInt(x)                                dyn(double(x))  dyn(int(x))
    isNaN(x)                                            (x != x)   (NaN is the only value
                                                                    not equal to itself)

``dyn()`` keeps ``asFloat(result) > 0`` working: CEL's checker refuses a double compared with an
int when it knows both types, and compares them at run time when it does not.

Refused: every other function (``all``, ``filter``, ``default``, ...), ``in``, ``matches``,
``contains``, ``startsWith``, ``?:``, ``??``, ``%``, ``**``, ``..``, and any variable but
``result``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""\s*(?:(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"""
    r"""|(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
    r"""|(?P<word>[A-Za-z_]\w*)"""
    r"""|(?P<operator>==|!=|<=|>=|&&|\|\||[<>!()\[\].,+\-*/])"""
    r"""|(?P<unknown>[^\s\w]+))"""
)
_KEYWORDS = {"and": "&&", "or": "||", "not": "!", "nil": "null", "true": "true", "false": "false"}
# dyn(): CEL's checker refuses double(x) > 0 (double against int) when it knows both types;
# through dyn() the comparison is made at run time, where CEL compares numbers across types.
_CALLS = {
    "len": "dyn(size({0}))",
    "asFloat": "dyn(double({0}))",
    "asInt": "dyn(int({0}))",
    "isNaN": "({0} != {0})",
}
_VARIABLE = "result"
_WORD_OPERATORS = frozenset({"in", "matches", "contains", "startsWith", "endsWith"})


class TranslationError(ValueError):
    """A condition outside the translated subset; the message says what is not translated."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def translate(condition: str) -> str:
    """The CEL text of an expr-language condition in the subset; TranslationError otherwise."""
    return _join(_render(_tokens(condition)))


def _tokens(condition: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    text = condition.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise TranslationError(f"{text[position:].strip()[:20]!r} is not translated")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match[kind]))
        position = match.end()
    return tokens


def _render(tokens: list[_Token]) -> list[str]:
    parts: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1].text if index + 1 < len(tokens) else ""
        member = index > 0 and tokens[index - 1].text == "."
        if token.kind == "word" and following == "(" and not member and token.text in _CALLS:
            end = _closing(tokens, index + 1)
            inner = _join(_render(tokens[index + 2 : end]))
            parts.append(_CALLS[token.text].format(inner))
            index = end + 1
            continue
        if token.kind == "unknown":
            raise TranslationError(f"{token.text!r} is not translated")
        if token.kind == "word" and not member:
            parts.append(_word(token.text, following))
        elif token.text == "." and (not following or tokens[index + 1].kind != "word"):
            raise TranslationError("'.' must be followed by a field name")
        else:
            parts.append(token.text)
        index += 1
    return parts


def _join(parts: list[str]) -> str:
    """Tokens back into text: spaces around operators, none inside ``a.b``, ``a[0]``, ``(x)``."""
    text = ""
    for part in parts:
        tight = text.endswith((".", "[", "(")) or (text.endswith("!") and not text.endswith("!="))
        if text and not tight and part not in (".", "[", "]", ")", ","):
            text += " "
        text += part
    return text


def _word(word: str, following: str) -> str:
    if word in _KEYWORDS:
        return _KEYWORDS[word]
    if word == _VARIABLE:
        return word
    if word in _WORD_OPERATORS:
        raise TranslationError(f"the operator {word!r} is not translated")
    if following == "(":
        raise TranslationError(f"the function {word}() is not translated")
    raise TranslationError(f"{word!r} is not translated (only the variable 'result' is)")


def _closing(tokens: list[_Token], opening: int, open_: str = "(", close: str = ")") -> int:
    depth = 0
    for index in range(opening, len(tokens)):
        if tokens[index].text == open_:
            depth += 1
        elif tokens[index].text == close:
            depth -= 1
            if depth == 0:
                return index
    raise TranslationError(f"a {open_!r} is not closed")
