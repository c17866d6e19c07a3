"""The bootstrap dataset's targets: evidence sentences inside the gold answer, or a decline."""

from __future__ import annotations

import random

from assistant.learning.bootstrap import (
    CorpusQuestion,
    grounded_target,
    mentions_subject,
)
from assistant.learning.invented_questions import invented_questions, noisy
from retrieval.evidence import Evidence, Sentence, split_sentences
from retrieval.types import Chunk, Hit

DOC = (
    "Asthma is a chronic disease of the airways. It causes wheezing and coughing. "
    "Asthma is treated with inhalers. Most people can control it."
)


def _evidence(n: int, doc_id: str, spans: list[tuple[int, int]]) -> Evidence:
    chunk = Chunk(doc_id, "Asthma", "medical", "", 0, len(DOC), DOC)
    hit = Hit(chunk, 1.0, 0.8, 0)
    return Evidence(n, hit, tuple(Sentence(a, b, DOC[a:b]) for a, b in spans))


SENTENCES = split_sentences(DOC)


def test_the_target_copies_the_evidence_sentences_inside_the_gold_span_with_numbers() -> None:
    gold = (44, 109)  # "It causes ... inhalers."
    question = CorpusQuestion("How is asthma treated?", "doc-a", (gold,), "medical")
    evidence = [_evidence(1, "doc-b", SENTENCES), _evidence(2, "doc-a", SENTENCES)]
    assert grounded_target(question, evidence) == (
        "It causes wheezing and coughing. [2] Asthma is treated with inhalers. [2]"
    )


def test_a_short_gold_span_inside_a_sentence_counts_that_sentence() -> None:
    question = CorpusQuestion("Who?", "doc-a", ((60, 68),), "legal")  # "wheezing"
    evidence = [_evidence(1, "doc-a", SENTENCES)]
    assert grounded_target(question, evidence) == "It causes wheezing and coughing. [1]"


def test_no_target_when_the_evidence_misses_the_gold_answer() -> None:
    question = CorpusQuestion("Q", "doc-a", ((110, 137),), "medical")
    assert grounded_target(question, [_evidence(1, "doc-a", SENTENCES[:2])]) is None


def test_invented_subjects_are_not_in_the_evidence_of_real_pages() -> None:
    rng = random.Random(3)
    questions = invented_questions(rng, 30)
    assert len(questions) == 30 and {d for _, d in questions} == {"medical", "legal"}
    asthma = [_evidence(1, "doc-a", SENTENCES)]
    assert not any(mentions_subject(q.split(":")[0], asthma) for q, d in questions if d == "legal")


def test_noisy_questions_look_typed() -> None:
    text = noisy("What are the treatments for Asthma ?", random.Random(0))
    assert text == text.lower() and not text.endswith("?")
