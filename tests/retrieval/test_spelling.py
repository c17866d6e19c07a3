"""Misspelled query words read as the vocabulary's words, and only those."""

from __future__ import annotations

from retrieval.spelling import SpellingCorrector

VOCABULARY = {
    "diseas": 900,
    "diabet": 300,
    "hereditari": 80,
    "symptom": 700,
    "sympathi": 2,
    "care": 50,
}


def test_a_word_one_edit_away_is_corrected() -> None:
    speller = SpellingCorrector(VOCABULARY)
    assert speller.correct("deseas") == "diseas"  # substitution
    assert speller.correct("diabte") == "diabet"  # adjacent swap counts as one edit
    assert speller.correct("symptomm") == "symptom"  # insertion


def test_long_words_may_take_two_edits_short_ones_only_one() -> None:
    speller = SpellingCorrector(VOCABULARY)
    assert speller.correct("herediteri") == "hereditari"
    assert speller.correct("dsiaes") is None  # six letters, two edits: too far


def test_known_short_and_odd_words_are_left_alone() -> None:
    speller = SpellingCorrector(VOCABULARY)
    assert speller.correct("diseas") is None  # known
    assert speller.correct("cere") is None  # shorter than five letters
    assert speller.correct("sla13a5") is None  # not a word
    assert speller.correct("pneumonoultra") is None  # nothing close


def test_on_equal_distance_the_commoner_word_wins() -> None:
    speller = SpellingCorrector({"sympathi": 2, "sympathy": 40})
    assert speller.correct("sympathe") == "sympathy"
    assert SpellingCorrector({"sympathi": 40, "sympathy": 2}).correct("sympathe") == "sympathi"
