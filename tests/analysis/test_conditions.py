"""Conditions (CEL over ``result``), the expr-to-CEL translation and the JSON path subset."""

from __future__ import annotations

import math

import pytest

from tether.analysis import Conditions, Empty, EmptyResult, Phase
from tether.analysis.expr import TranslationError, translate
from tether.analysis.jsonpath import NO_MATCH, JsonPath, JsonPathError
from tether.core.cel import CelError

JUDGED = [
    # (success, failure, value, phase)
    ("result[0] >= 0.95", None, [0.97], Phase.SUCCESSFUL),
    ("result[0] >= 0.95", None, [0.5], Phase.FAILED),
    ("result[0] >= 1", None, [1.0], Phase.SUCCESSFUL),  # int against double compares
    (None, "result[0] > 0.05", [0.01], Phase.SUCCESSFUL),
    (None, "result[0] > 0.05", [0.2], Phase.FAILED),
    ("result < 0.01", "result > 0.05", 0.001, Phase.SUCCESSFUL),
    ("result < 0.01", "result > 0.05", 0.1, Phase.FAILED),
    ("result < 0.01", "result > 0.05", 0.03, Phase.INCONCLUSIVE),
    ("result.ok && result.p >= 0.9", None, {"ok": True, "p": 0.95}, Phase.SUCCESSFUL),
    ("double(result) > 2.5", None, "3.1", Phase.SUCCESSFUL),
    ("result[0] != result[0]", None, [math.nan], Phase.SUCCESSFUL),  # isNaN, translated
    ("result[0] >= 0.95", None, [], Phase.ERROR),  # index past the end: CEL's message kept
    ("result.missing", None, {"ok": True}, Phase.ERROR),
    ("result", None, 3, Phase.ERROR),  # not a boolean
]


@pytest.mark.parametrize(("success", "failure", "value", "phase"), JUDGED)
def test_conditions_judge_a_value(success, failure, value, phase):
    assert Conditions.compile(success, failure).judge(value).phase is phase


def test_an_evaluation_error_names_the_expression():
    judgement = Conditions.compile("result[0] >= 0.95", None).judge([])
    assert judgement.message.startswith("'result[0] >= 0.95' could not be evaluated: ")
    assert "index" in judgement.message.lower()


@pytest.mark.parametrize(
    ("choice", "phase"),
    [
        (EmptyResult.SUCCESS, Phase.SUCCESSFUL),
        (EmptyResult.FAILURE, Phase.FAILED),
        (EmptyResult.INCONCLUSIVE, Phase.INCONCLUSIVE),
    ],
)
def test_an_empty_result_is_judged_by_the_choice_not_the_expression(choice, phase):
    judgement = Conditions.compile("result[0] >= 0.95", None, choice).judge(Empty("no series"))
    assert judgement.phase is phase
    assert judgement.message == f"empty result (no series), counted as {choice.value} (emptyResult)"


def test_the_default_choice_for_an_empty_result_is_inconclusive():
    assert Conditions.compile("true", None).judge(Empty("x")).phase is Phase.INCONCLUSIVE


@pytest.mark.parametrize(
    ("success", "failure", "message"),
    [
        (None, None, "neither successCondition nor failureCondition is set"),
        ("result >", None, "successCondition 'result >'"),
        ("result[0] > 1", "results > 1", "failureCondition 'results > 1'"),
        ("size(result)", None, "it gives a int, a bool is expected"),
    ],
)
def test_bad_conditions_are_refused_when_compiled(success, failure, message):
    with pytest.raises(CelError) as raised:
        Conditions.compile(success, failure)
    assert message in str(raised.value)


TRANSLATED = [
    ("result[0] >= 0.95", "result[0] >= 0.95"),
    ("result == true", "result == true"),
    ("result.ok && result.successPercent >= 0.90", "result.ok && result.successPercent >= 0.90"),
    ("result[0] < 0.05 and result[1] < 0.1", "result[0] < 0.05 && result[1] < 0.1"),
    ("not (result[0] < 0.5) or result[1] == nil", "!(result[0] < 0.5) || result[1] == null"),
    ("len(result) == 0", "dyn(size(result)) == 0"),
    ("asFloat(result) >= 0.9", "dyn(double(result)) >= 0.9"),
    ("asInt(result) > 5", "dyn(int(result)) > 5"),
    ("isNaN(result[0]) || result[0] >= 0.95", "(result[0] != result[0]) || result[0] >= 0.95"),
    ("result['data'] == 'x'", "result['data'] == 'x'"),
]


@pytest.mark.parametrize(("argo", "cel"), TRANSLATED)
def test_argo_conditions_in_the_common_shapes_become_cel(argo, cel):
    assert translate(argo) == cel
    Conditions.compile(translate(argo), None)  # and the CEL compiles


@pytest.mark.parametrize(
    ("argo", "value", "phase"),
    [
        ("asFloat(result) > 0", "0.5", Phase.SUCCESSFUL),  # double against an int literal
        ("asInt(result) >= 2.5", "3", Phase.SUCCESSFUL),
        ("len(result) > 0 and result[0] < 0.8", [0.9], Phase.FAILED),
        ("not isNaN(result[0])", [math.nan], Phase.FAILED),
    ],
)
def test_translated_conditions_judge_as_argo_would(argo, value, phase):
    assert Conditions.compile(translate(argo), None).judge(value).phase is phase


@pytest.mark.parametrize(
    ("argo", "reason"),
    [
        ("all(result, {# > 0.9})", "the function all() is not translated"),
        ("default(result, 0) > 1", "the function default() is not translated"),
        ("result in [1, 2]", "the operator 'in' is not translated"),
        ("result matches '^ok'", "the operator 'matches' is not translated"),
        ("score > 1", "'score' is not translated (only the variable 'result' is)"),
        ("result[0] ?? 0", "'??' is not translated"),
        ("result > 1 ? true : false", "'?' is not translated"),
        ("isNaN(result[0]", "a '(' is not closed"),
    ],
)
def test_other_argo_conditions_are_refused_with_what_is_not_translated(argo, reason):
    with pytest.raises(TranslationError) as raised:
        translate(argo)
    assert str(raised.value) == reason


DOCUMENT = {"data": {"ok": True, "rates": [0.9, 0.95, 0.99], "by-zone": {"a": 1, "b": 2}}}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", DOCUMENT),
        ("{$.data.ok}", True),
        ("$.data.rates[0]", 0.9),
        ("$.data.rates[-1]", 0.99),
        ("$['data']['by-zone'].b", 2),
        ('$["data"].by-zone.a', 1),
        ("$.data.rates[*]", [0.9, 0.95, 0.99]),
        ("$.data.by-zone.*", [1, 2]),
        ("$.data.missing", NO_MATCH),
        ("$.data.rates[7]", NO_MATCH),
        ("$.data.ok.deeper", NO_MATCH),
    ],
)
def test_the_json_path_subset(path, value):
    found = JsonPath.parse(path).find(DOCUMENT)
    if value is NO_MATCH:
        assert found is NO_MATCH
    else:
        assert found == value


@pytest.mark.parametrize("path", ["data.ok", "$..ok", "$.data.rates[0:2]", "$.data[?(@.ok)]"])
def test_json_paths_outside_the_subset_are_refused(path):
    with pytest.raises(JsonPathError) as raised:
        JsonPath.parse(path)
    assert repr(path) in str(raised.value)
