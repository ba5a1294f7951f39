"""How outputs become statuses (service/answers.py), and the card's answers block (neuralnet/model_card.py)."""
import numpy as np
import pytest

from neuralnet import model_card
from neuralnet.model_card import ModelFormatError
from service.answers import NO_DIGIT, NOT_A_DIGIT, OK, SCORES, SEVERAL, UNCERTAIN, Policy, judge
from service.config import Config, ConfigError

BLOCK = {"temperature": 2.0, "score": "max_probability", "digit_score_threshold": 0.5,
         "confidence_threshold": 0.9}


def logits_for(confidences):
    """Logits whose softmax puts ``c`` on class 3 and spreads the rest evenly, per ``c``."""
    c = np.asarray(confidences, np.float64)[:, None]
    p = np.where(np.arange(10) == 3, c, (1 - c) / 9)
    return np.log(p)


def test_each_status_follows_from_the_score_the_confidence_and_the_marks():
    policy = Policy(temperature=1.0, confidence=0.9, digit_score=0.5)
    z = logits_for([0.99, 0.7, 0.3, 0.99, 0.99])
    p, statuses = judge(policy, z, np.array([1, 1, 1, 0, 2]))
    assert statuses == [OK, UNCERTAIN, NOT_A_DIGIT, NO_DIGIT, SEVERAL]
    assert np.allclose(p[:, 3], [0.99, 0.7, 0.3, 0.99, 0.99])


def test_several_marks_that_are_not_digits_are_not_a_digit():
    _, statuses = judge(Policy(digit_score=0.5), logits_for([0.2]), np.array([3]))
    assert statuses == [NOT_A_DIGIT]


def test_the_temperature_softens_the_probabilities():
    z = logits_for([0.99])
    p1, _ = judge(Policy(temperature=1.0), z, np.array([1]))
    p2, _ = judge(Policy(temperature=2.0), z, np.array([1]))
    assert p2[0, 3] < p1[0, 3] and p2.argmax() == p1.argmax()


def test_policy_comes_from_the_card_and_the_configuration_overrides_it():
    card = {"answers": BLOCK}
    assert Policy.from_card(card) == Policy(2.0, 0.9, "max_probability", 0.5)
    assert Policy.from_card(card, confidence=0.5, digit_score=0.1) == Policy(2.0, 0.5, "max_probability", 0.1)
    assert Policy.from_card({}) == Policy()  # an older version: temperature 1, nothing flagged
    _, statuses = judge(Policy.from_card({}), logits_for([0.11]), np.array([1]))
    assert statuses == [OK]


def test_marks_of_a_number_are_judged_with_the_reading_threshold():
    card = {"answers": {**BLOCK, "read_digit_score_threshold": 0.2}}
    assert Policy.from_card(card, reading=True).digit_score == 0.2
    assert Policy.from_card(card).digit_score == 0.5
    assert Policy.from_card({"answers": BLOCK}, reading=True).digit_score == 0.5  # none recorded: the same
    assert Policy.from_card(card, digit_score=0.7, reading=True).digit_score == 0.7  # the override wins


def test_the_top2_score_tells_hesitation_from_spread():
    hesitating = np.log(np.array([[0.48, 0.48] + [0.04 / 8] * 8]))  # a 0 or a 1: still a digit
    spread = np.log(np.full((1, 10), 0.1))                            # none of them
    policy = Policy(score="top2_probability", digit_score=0.5, confidence=0.9)
    _, statuses = judge(policy, np.concatenate([hesitating, spread]), np.array([1, 1]))
    assert statuses == [UNCERTAIN, NOT_A_DIGIT]


def test_config_reads_the_overrides_from_the_environment():
    cfg = Config.from_env({"CONFIDENCE_THRESHOLD": "0.8", "DIGIT_SCORE_THRESHOLD": "0.25"})
    assert cfg.confidence_threshold == 0.8 and cfg.digit_score_override == 0.25
    assert Config.from_env({}).digit_score_override is None
    for env in ({"CONFIDENCE_THRESHOLD": "2"}, {"DIGIT_SCORE_THRESHOLD": "high"}):
        with pytest.raises(ConfigError):
            Config.from_env(env)


def test_the_card_and_the_service_know_the_same_scores():
    assert set(SCORES) == set(model_card.SCORES)


@pytest.mark.parametrize("change", [
    {"temperature": 0}, {"temperature": "1"}, {"temperature": float("nan")}, {"score": "entropy"},
    {"score": ["max_probability"]}, {"confidence_threshold": 1.5}, {"digit_score_threshold": None},
    {"digit_score_threshold": float("inf")}, {"read_digit_score_threshold": "0.5"},
])
def test_a_card_with_a_broken_answers_block_is_refused(change):
    with pytest.raises(ModelFormatError, match="answers"):
        model_card._check_answers({**BLOCK, **change})


def test_a_good_answers_block_passes():
    model_card._check_answers(BLOCK)
    model_card._check_answers({})
