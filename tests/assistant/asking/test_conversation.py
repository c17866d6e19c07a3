"""Follow-up questions read against the conversation's subject."""

from __future__ import annotations

import pytest

from assistant.asking.conversation import PastTurn, needs_context, resolve

DIABETES = [PastTurn("What is diabetes?", ("Diabetes",))]


@pytest.mark.parametrize(
    ("followup", "resolved"),
    [
        ("What are its symptoms?", "What are the symptoms of Diabetes?"),
        ("how do they treat it", "how do they treat Diabetes"),
        ("Is this condition inherited?", "Is Diabetes inherited?"),
        ("Can it be prevented?", "Can Diabetes be prevented?"),
        ("and the outlook?", "and the outlook of Diabetes?"),
        ("What's the prognosis?", "What's the prognosis of Diabetes?"),
        (
            "How do doctors confirm the diagnosis?",
            "How do doctors confirm the diagnosis of Diabetes?",
        ),
    ],
)
def test_a_follow_up_gets_the_subject_of_the_cited_page(followup: str, resolved: str) -> None:
    assert resolve(followup, DIABETES) == resolved


def test_a_question_that_names_its_subject_is_left_alone() -> None:
    question = "What are the symptoms of asthma?"
    assert not needs_context(question)
    assert resolve(question, DIABETES) == question


def test_without_citations_the_best_page_for_the_previous_question_names_the_subject() -> None:
    asked: list[str] = []

    def top_title(question: str) -> str:
        asked.append(question)
        return "Glaucoma"

    history = [PastTurn("tell me about the eye pressure disease")]
    assert resolve("how is it treated?", history, top_title) == "how is Glaucoma treated?"
    assert asked == ["tell me about the eye pressure disease"]


def test_a_contract_follow_up_keeps_the_contract() -> None:
    history = [PastTurn("In the Supply Agreement between Acme Inc and Beta Ltd: What is the date?")]
    assert (
        resolve("What about the governing law?", history)
        == "In the Supply Agreement between Acme Inc and Beta Ltd: What about the governing law?"
    )


def test_the_first_turn_is_never_rewritten() -> None:
    assert resolve("What are its symptoms?", []) == "What are its symptoms?"
