"""The answer pipeline with the real index, the real embedder and the served model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from assistant.asking.answer import Answer, GenerationOptions
from assistant.asking.conversation import PastTurn
from assistant.asking.pipeline import AnswerPipeline
from training.prompt_format import NOT_IN_SOURCES

pytestmark = pytest.mark.slow

ASTHMA = "medquad:MPlus_Health_Topics:0000065"


class ScriptedModel:
    """A model that writes a fixed text (the check under test is what follows the model)."""

    name = "scripted.gguf"
    context_size = 2048

    def __init__(self, text: str) -> None:
        self.text = text
        self.prompts: list[list[dict[str, str]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def stream_chat(
        self,
        messages: list[dict[str, str]],
        max_tokens: int | None = None,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        self.prompts.append(messages)
        yield from (word + " " for word in self.text.split())

    def close(self) -> None:
        pass


def scripted_pipeline(services, text: str) -> tuple[AnswerPipeline, ScriptedModel]:
    model = ScriptedModel(text)
    return AnswerPipeline(
        services.settings, services.index, model, embedder=services.embedder
    ), model


def test_answer_streams_checked_sentences_then_cites_the_right_page(indexed_services) -> None:
    events = list(indexed_services.pipeline.stream("How is asthma treated?", "medical"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and "token" in kinds
    answer: Answer = events[-1].data
    assert answer.origin in ("model", "evidence") and not answer.abstained
    streamed = "".join(e.data for e in events if e.kind == "token")
    assert streamed.split() == answer.text.split()  # nothing shown that is not in the answer
    asthma_pages = {ASTHMA, "medquad:GARD:0000491"}
    assert answer.citations and {c.doc_id for c in answer.citations} <= asthma_pages
    for citation in answer.citations:
        assert f"[{citation.n}]" in answer.text and citation in answer.sources
    assert answer.timings["ttft_ms"] > 0 and answer.model.endswith(".gguf")


def test_a_sentence_with_a_date_absent_from_the_evidence_is_never_shown(indexed_services) -> None:
    fabricated = "Asthma was first described on 12 March 1987 in Geneva. [1]"
    pipeline, model = scripted_pipeline(indexed_services, fabricated)
    events = list(pipeline.stream("What is asthma?", use_cache=False))
    answer: Answer = events[-1].data
    shown = "".join(e.data for e in events if e.kind == "token")
    assert "1987" not in shown and "1987" not in answer.text
    # Nothing the model said survived: the reader gets quoted evidence, flagged for review.
    assert answer.origin == "evidence" and "fallback_answer" in answer.flags
    assert answer.citations and answer.dropped == ("numbers",)
    assert model.prompts and "Evidence:\n[1] " in model.prompts[0][1]["content"]


def test_supported_sentences_stream_and_unsupported_ones_are_dropped(indexed_services) -> None:
    hits = indexed_services.index.search("What is asthma?", 4)
    first = hits[0].chunk.text.split(". ")[0].strip().rstrip(".") + "."
    script = f"{first} [1] The cure is to drink seawater daily. [1]"
    pipeline, _ = scripted_pipeline(indexed_services, script)
    answer = pipeline.answer("What is asthma?", use_cache=False)
    assert answer.origin == "model"
    assert "seawater" not in answer.text and first in answer.text
    assert "unsupported_sentences" in answer.flags


def test_an_invented_subject_gets_an_honest_abstention(indexed_services) -> None:
    answer = indexed_services.pipeline.answer(
        "What are the symptoms of Halvorsen-Treadgold syndrome?", use_cache=False
    )
    assert answer.abstained and answer.origin == "none"
    assert answer.text == NOT_IN_SOURCES and answer.citations == []
    assert answer.sources  # what was searched is still listed


def test_a_follow_up_is_answered_about_the_conversation_subject(indexed_services) -> None:
    history = [PastTurn("What is asthma?", ("Asthma",))]
    answer = indexed_services.pipeline.answer(
        "What are its symptoms?", history=history, use_cache=False
    )
    assert answer.question == "What are the symptoms of Asthma?"
    assert ASTHMA in [s.doc_id for s in answer.sources]


def test_max_tokens_bounds_the_generation(indexed_services) -> None:
    answer = indexed_services.pipeline.answer(
        "What is asthma?", use_cache=False, options=GenerationOptions(max_tokens=8)
    )
    assert answer.timings["completion_tokens"] <= 8
    assert answer.finish_reason == "length" or answer.timings["completion_tokens"] < 8


def test_citation_offsets_point_into_the_stored_document(indexed_services) -> None:
    answer = indexed_services.pipeline.answer("How is asthma treated?")
    assert answer.sources
    for source in answer.sources:
        view = indexed_services.history.passage(source.doc_id, source.start, source.end)
        assert view.passage and view.title == source.title


def test_gibberish_is_flagged_low_confidence_and_not_answered(indexed_services) -> None:
    answer = indexed_services.pipeline.answer("qwzx plorb vintage carburetor gasket")
    assert "low_retrieval_confidence" in answer.flags
    assert answer.abstained


def test_a_decline_about_the_document_the_question_names_becomes_quoted_evidence(
    indexed_services,
) -> None:
    pipeline, _ = scripted_pipeline(indexed_services, NOT_IN_SOURCES)
    answer = pipeline.answer("What is juvenile osteoporosis?", use_cache=False)
    assert answer.sources[0].doc_id == "medquad:GARD:0003327"
    # The reader gets the named page's own sentences, and a reviewer sees why.
    assert answer.origin == "evidence" and not answer.abstained
    assert {"model_declined", "fallback_answer"} <= set(answer.flags)
    assert "[1]" in answer.text and answer.citations[0].doc_id == "medquad:GARD:0003327"


def test_a_decline_about_a_question_that_names_no_document_stands(indexed_services) -> None:
    pipeline, _ = scripted_pipeline(indexed_services, NOT_IN_SOURCES)
    answer = pipeline.answer("Can my sister keep her blood sugar down with tea?", use_cache=False)
    assert answer.abstained and answer.origin == "none"
    assert answer.abstain_reason == "model_declined" and answer.citations == []


def test_a_contract_that_is_not_in_the_corpus_gets_an_abstention(indexed_services) -> None:
    absent = indexed_services.pipeline.answer(
        "In the Services Agreement between Silverpine Payroll Solutions, Inc. and Orchard Hill"
        " Unified School District: Which state's law governs this agreement?",
        use_cache=False,
    )
    assert absent.abstained and absent.abstain_reason == "unknown_subject"
    assert absent.citations == []
    present = indexed_services.pipeline.answer(
        "In the Multiple LINAC and Multi-Modality Distributor Agreement between ACCURAY"
        " INCORPORATED and SIEMENS AKTIENGESELLSCHAFT: What is the name of the contract?",
        use_cache=False,
    )
    assert present.abstain_reason != "unknown_subject"


def test_a_thin_answer_is_never_shown_and_the_evidence_is_quoted(indexed_services) -> None:
    hits = indexed_services.index.search("How is asthma treated?", 4)
    words = [w for w in hits[0].chunk.text.split() if w.isalpha() and len(w) > 4][:2]
    thin = " ".join(words) + ". [1]"  # supported by the evidence, but says nothing
    pipeline, _ = scripted_pipeline(indexed_services, thin)
    events = list(pipeline.stream("How is asthma treated?", use_cache=False))
    answer: Answer = events[-1].data
    shown = "".join(e.data for e in events if e.kind == "token")
    assert answer.origin == "evidence" and "fallback_answer" in answer.flags
    assert "too_short" in answer.dropped
    assert not shown.startswith(thin.split(".")[0])
    assert "degenerate_answer" not in answer.flags
