"""`assistant eval answers`: the measures, and the command's contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.asking.answer import Answer
from assistant.evaluation.answers import (
    AnswerCase,
    AnswerResult,
    CitedPassage,
    is_refusal,
    plain_answer,
    rouge_l,
    score_answers,
    unsupported_sentences,
)
from tests.assistant.test_cli import run_cli

QUALITY_KEYS = {
    "rougeL",
    "citation_precision",
    "citation_recall",
    "refusal_rate",
    "degenerate_rate",
    "gold_cited_rate",
    "unsupported_sentence_rate",
    "abstention_rate",
    "evidence_cited_rate",
    "model_answer_rate",
    "fallback_rate",
}
KEYS = {"n", "p50_ttft_ms", "tokens_per_s", "extractive_baseline", *QUALITY_KEYS}


def test_rouge_l_is_the_f1_of_the_longest_common_subsequence() -> None:
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("", "anything") == 0.0 and rouge_l("dogs bark", "cats meow") == 0.0
    # LCS "the cat the mat" = 4 of 6 candidate words and 4 of 5 reference words.
    assert rouge_l("the cat sat on the mat", "the cat and the mat") == pytest.approx(
        2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5)
    )


def test_the_disclaimer_and_markers_are_not_scored() -> None:
    disclaimer = "This is general information, not medical advice."
    answer = Answer(
        text=f"Asthma narrows the airways [1]. It is treated with inhalers [2].\n\n{disclaimer}",
        citations=[],
        sources=[],
        flags=[],
        retrieval_score=None,
        disclaimer=disclaimer,
    )
    assert plain_answer(answer) == "Asthma narrows the airways. It is treated with inhalers."


def test_refusals_are_recognised() -> None:
    assert is_refusal("I don't know the answer from these sources.")
    assert is_refusal("The sources I can search do not answer this question.")
    assert not is_refusal("Asthma is a chronic disease; doctors know a lot about it.")


def passage(doc_id: str, n: int = 1, text: str = "", start: int = 0, end: int = 1) -> CitedPassage:
    return CitedPassage(n, doc_id, start, end, text)


def result(
    text: str,
    cited: tuple[CitedPassage, ...],
    refused: bool,
    ttft: float | None,
    tokens: int,
    seconds: float,
    **extra: object,
) -> AnswerResult:
    by_sentence = extra.pop("cited_by_sentence", ((text, tuple(c.n for c in cited)),))
    return AnswerResult(
        text, cited, refused, ttft, tokens, seconds, cited_by_sentence=by_sentence, **extra
    )  # type: ignore[arg-type]


def test_scores_count_citations_against_the_gold_document() -> None:
    results = {
        "q1": result(
            "asthma narrows airways",
            (passage("gold1", 1, "asthma narrows airways"), passage("other", 2)),
            False,
            100.0,
            11,
            0.5,
        ),
        "q2": result("I do not know.", (), True, 300.0, 5, 0.25),
        "q3": result("The answer is: 1", (passage("gold3", 1, "", 5, 9),), False, None, 0, 0.0),
        "q4": result(
            "The sources I can search do not answer this question.",
            (),
            True,
            None,
            0,
            0.0,
            abstained=True,
            origin="none",
        ),
    }
    cases = [
        AnswerCase("q1", "gold1", "asthma narrows the airways"),
        AnswerCase("q2", "gold2", "something"),
        AnswerCase("q3", "gold3", "text", evidence_spans=((0, 6),)),
        AnswerCase("q4", None, ""),
    ]
    by_question = lambda case: results[case.question]  # noqa: E731
    figures = score_answers(by_question, cases, baseline=by_question)
    assert set(figures) == KEYS and figures["n"] == 4
    assert set(figures["extractive_baseline"]) == QUALITY_KEYS
    assert figures["citation_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["gold_cited_rate"] == pytest.approx(2 / 3, abs=1e-4)  # of the 3 with gold
    assert figures["refusal_rate"] == pytest.approx(2 / 4, abs=1e-4)
    assert figures["abstention_rate"] == pytest.approx(1 / 4, abs=1e-4)
    assert figures["degenerate_rate"] == pytest.approx(1 / 4, abs=1e-4)  # "The answer is: 1"
    assert figures["evidence_cited_rate"] == 1.0  # q3's citation overlaps its span
    assert figures["p50_ttft_ms"] == 100.0  # answers only: a decline is fast and says little
    assert figures["tokens_per_s"] == pytest.approx((10 + 4) / 0.75, abs=0.01)


def test_a_sentence_is_unsupported_when_its_cited_passage_lacks_its_words() -> None:
    cited = (passage("d", 1, "Asthma narrows the airways of the lungs."), passage("d", 2, "x"))
    answer = result(
        "",
        cited,
        False,
        1.0,
        1,
        1.0,
        cited_by_sentence=(
            ("Asthma narrows the airways.", (1,)),
            ("Asthma is cured by seawater.", (1,)),
            ("Asthma narrows the airways.", (2,)),  # the right words, the wrong passage
            ("An uncited claim about lungs.", ()),
        ),
    )
    assert unsupported_sentences(answer) == (3, 4)


@pytest.mark.slow
def test_eval_answers_prints_exactly_the_contract_keys(indexed_services, tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    records = [
        {
            "question": "What is type 2 diabetes?",
            "doc_id": "medquad:MPlus_Health_Topics:0000273",
            "answer": "Type 2 diabetes is the most common form of diabetes.",
        },
        {
            "question": "What are the symptoms of type 2 diabetes?",
            "doc_id": "medquad:MPlus_Health_Topics:0000273",
            "answer": "Symptoms include increased thirst and tiredness.",
        },
    ]
    qa.write_text("".join(json.dumps(r) + "\n" for r in records))
    # Short answers: the command's contract is under test here, not the model.
    env = dict(
        os.environ,
        ASSISTANT_DATA_DIR=str(indexed_services.settings.data_dir),
        ASSISTANT_LOG_LEVEL="WARNING",
        ASSISTANT_LLM__MAX_TOKENS="24",
    )
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "eval", "answers", "--qa", str(qa), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) == KEYS and figures["n"] == 2
    assert set(figures["extractive_baseline"]) == QUALITY_KEYS
    assert figures["p50_ttft_ms"] > 0
    assert 0 < figures["rougeL"] <= 1 and 0 <= figures["citation_precision"] <= 1
    assert figures["extractive_baseline"]["gold_cited_rate"] == 1.0


@pytest.mark.slow
def test_create_token_prints_a_token_that_verifies(indexed_services) -> None:
    from assistant.accounts.tokens import verify_token
    from assistant.storage import models

    with indexed_services.db.session() as session:
        session.add(models.User(email="cli-token@example.org", password_hash="x"))
    data_dir = indexed_services.settings.data_dir
    result = run_cli(data_dir, "create-token", "cli-token@example.org", "--name", "cli")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert verify_token(indexed_services.db, token).name == "cli"
    assert token not in result.stderr
    missing = run_cli(data_dir, "create-token", "nobody@example.org", "--name", "x")
    assert missing.returncode == 2 and "no active user" in missing.stderr
