"""Evidence selection with the real embedder over the real fixture index."""

from __future__ import annotations

import pytest

from retrieval.evidence import EvidenceConfig, aspect_of, select_evidence, split_sentences


def test_sentences_keep_exact_offsets_and_long_ones_are_cut() -> None:
    text = "First one. Second one!\n- a list line\n" + "word, and " * 50 + "end."
    spans = split_sentences(text, max_words=30)
    assert [text[a:b] for a, b in spans[:3]] == ["First one.", "Second one!", "- a list line"]
    assert all(len(text[a:b].split()) <= 30 for a, b in spans)
    assert spans[-1][1] == len(text)


def test_the_aspect_drops_the_subject_and_the_contract_prefix() -> None:
    assert (
        aspect_of("What are the symptoms of Asthma ?", ["Asthma"]) == "What are the symptoms of ?"
    )
    assert (
        aspect_of("In the Supply Agreement between A and B: Which law governs?", [])
        == "Which law governs?"
    )
    assert aspect_of("Asthma", ["Asthma"]) == ""


@pytest.mark.slow
def test_evidence_is_the_answering_sentences_at_their_document_offsets(indexed_services) -> None:
    question = "What are the symptoms of asthma?"
    hits = indexed_services.index.search(question, 4)
    count = lambda text: len(text.split()) * 4 // 3  # noqa: E731 - a stand-in token count
    evidence = select_evidence(
        question, hits, indexed_services.embedder, count, EvidenceConfig(budget_tokens=200)
    )
    assert evidence and [e.n for e in evidence] == list(range(1, len(evidence) + 1))
    spent = sum(count(s.text) + 1 for e in evidence for s in e.sentences)
    assert spent <= 200
    for item in evidence:
        document = item.hit.chunk
        for sentence in item.sentences:
            start = sentence.start - document.start
            assert document.text[start : start + len(sentence.text)] == sentence.text
    chosen = " ".join(s.text.lower() for e in evidence for s in e.sentences)
    assert "wheez" in chosen or "cough" in chosen  # asthma's symptoms, not its treatment
