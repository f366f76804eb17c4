"""The ECRC's answer behaviour and its validation."""

from __future__ import annotations

import pytest

from b2bua.testbench.control import ANSWERS, AnswerBehaviour, BehaviourError


def test_default_behaviour_answers_200_at_once():
    behaviour = AnswerBehaviour()
    assert behaviour.to_json() == {"answer": "200", "ring_ms": 0, "bye_after_s": None}
    assert behaviour.final_status == 200


@pytest.mark.parametrize("answer", ANSWERS)
def test_every_documented_answer_is_accepted(answer):
    assert AnswerBehaviour.from_json({"answer": answer}).answer == answer


@pytest.mark.parametrize(
    "answer, status", [("200", 200), ("486", 486), ("503", 503), ("bye-after", 200), ("drop", None), ("ring", None)]
)
def test_final_status_follows_the_answer(answer, status):
    assert AnswerBehaviour(answer).final_status == status


def test_answer_may_be_given_as_a_number():
    assert AnswerBehaviour.from_json({"answer": 503}).answer == "503"


def test_bye_after_defaults_to_five_seconds_and_is_null_for_other_answers():
    assert AnswerBehaviour.from_json({"answer": "bye-after"}).bye_after_s == 5.0
    assert AnswerBehaviour.from_json({"answer": "bye-after", "bye_after_s": 1.5}).bye_after_s == 1.5
    assert AnswerBehaviour.from_json({"answer": "200"}).bye_after_s is None


def test_ring_ms_is_kept():
    assert AnswerBehaviour.from_json({"answer": "200", "ring_ms": 1500}).ring_ms == 1500


@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"answer": "404"}, "answer", "not one of 200, 486, 503, drop, ring, bye-after"),
        ({"answer": None}, "answer", "not one of"),
        ({}, "answer", "is required"),
        ({"answer": "200", "ring_ms": -1}, "ring_ms", "outside"),
        ({"answer": "200", "ring_ms": "500"}, "ring_ms", "whole number"),
        ({"answer": "200", "ring_ms": True}, "ring_ms", "whole number"),
        ({"answer": "200", "ring_ms": 1.5}, "ring_ms", "whole number"),
        ({"answer": "bye-after", "bye_after_s": 0}, "bye_after_s", "outside"),
        ({"answer": "bye-after", "bye_after_s": "soon"}, "bye_after_s", "number of seconds"),
        ({"answer": "200", "ringms": 5}, "ringms", "unknown key"),
        (["503"], "body", "JSON object"),
    ],
)
def test_bad_behaviour_is_refused_naming_the_field(data, field, words):
    with pytest.raises(BehaviourError) as caught:
        AnswerBehaviour.from_json(data)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)
