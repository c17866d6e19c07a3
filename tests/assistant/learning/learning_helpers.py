"""Reviewed feedback written straight into the database, as the chat and review pages leave it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from assistant.settings import PROJECT_ROOT
from assistant.storage import models
from assistant.storage.db import Database
from tests.conftest import TESTS_DATA

# Personal data injected into questions and corrections: none of it may reach a file.
PII_NAME = "Jonathan Whitcombe"
PII_PHONE = "(415) 555-0132"
PII_EMAIL = "jon.whitcombe@example.org"
PII_VALUES = (PII_NAME, PII_PHONE, PII_EMAIL, "555-0132", "whitcombe")

# Small enough for two shared cores: ~150-token examples, a few steps, 16-token answers.
TINY_LEARNING: dict[str, object] = {
    "epochs": 4,
    "learning_rate": 2e-3,
    "batch_size": 2,
    "max_seq_len": 192,
    "validation_fraction": 0.25,
    "eval_max_tokens": 16,
    "eval_validation_limit": 2,
    "regression_limit": 3,
    # Speed is compared on shared, busy cores: only a collapse should fail the gate here.
    "max_speed_drop": 0.9,
    "lock_ttl_s": 20,
}


@dataclass(frozen=True)
class QA:
    question: str
    doc_id: str
    title: str
    text: str  # the whole document
    start: int
    end: int

    @property
    def answer(self) -> str:
        return self.text[self.start : self.end]


def qa_items(n: int) -> list[QA]:
    """``n`` MedQuAD questions with a short answer span (cut at a sentence end)."""
    wanted = [json.loads(line) for line in (TESTS_DATA / "medquad_qa_sample.jsonl").open()]
    docs = {}
    path = PROJECT_ROOT / "data" / "corpus" / "medical" / "medquad_docs.jsonl"
    ids = {w["doc_id"] for w in wanted}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["id"] in ids:
                docs[record["id"]] = record
    items, seen = [], set()
    for w in wanted:
        doc = docs.get(w["doc_id"])
        if doc is None or w["doc_id"] in seen:
            continue
        seen.add(w["doc_id"])
        start, end = w["answer_char_start"], w["answer_char_end"]
        span = doc["text"][start:end]
        cut = span.find(". ", 120)
        end = start + (cut + 1 if 0 < cut < 260 else min(len(span), 260))
        items.append(QA(w["question"], doc["id"], doc["title"], doc["text"], start, end))
        if len(items) == n:
            break
    return items


def seed_feedback(
    db: Database, items: list[QA], *, scramble: bool = False, with_pii: bool = False
) -> None:
    """One conversation per item: the question, an answer citing the passage, a decision.

    All approved, except (when ``with_pii``) one edited by a reviewer and one whose user
    correction, carrying personal data, the reviewer accepted. ``scramble`` pairs each question with
    the next item's answer (a deliberately bad dataset).
    """
    with db.session() as session:
        user = session.query(models.User).filter_by(email="learner@example.com").first()
        if user is None:
            user = models.User(email="learner@example.com", password_hash="x")
            session.add(user)
            session.flush()
        for i, item in enumerate(items):
            if session.query(models.Document).filter_by(doc_id=item.doc_id).first() is None:
                session.add(
                    models.Document(
                        doc_id=item.doc_id,
                        collection="medical",
                        title=item.title,
                        text=item.text,
                        content_hash=str(i),
                    )
                )
            answer = items[(i + 1) % len(items)].answer if scramble else item.answer
            question = item.question
            if with_pii and i == 0:
                question = f"My name is {PII_NAME}, phone {PII_PHONE}. {question}"
            conversation = models.Conversation(user_id=user.id)
            session.add(conversation)
            session.flush()
            session.add(
                models.Message(conversation_id=conversation.id, role="user", content=question)
            )
            citation = {
                "n": 1,
                "doc_id": item.doc_id,
                "title": item.title,
                "source_url": "",
                "collection": "medical",
                "start": item.start,
                "end": item.end,
                "score": 0.9,
            }
            state, edited = models.ReviewState.APPROVED, None
            content = answer
            if with_pii and i == 1:
                state, edited, content = models.ReviewState.EDITED, answer, "I am not sure."
            if with_pii and i == 2:
                state, content = models.ReviewState.REJECTED, "It is a kind of bird."
            message = models.Message(
                conversation_id=conversation.id,
                role="assistant",
                content=content,
                citations=[citation],
            )
            session.add(message)
            session.flush()
            accepted = None
            if with_pii and i == 2:
                # The user's correction, accepted by the reviewer word for word.
                accepted = models.Feedback(
                    message_id=message.id,
                    user_id=user.id,
                    rating=-1,
                    correction=f"{answer} Write to me at {PII_EMAIL}.",
                )
                session.add(accepted)
                session.flush()
                state, edited = models.ReviewState.EDITED, accepted.correction
            session.add(
                models.ReviewItem(
                    message_id=message.id,
                    reasons=["thumbs_down"],
                    state=state,
                    edited_answer=edited,
                    accepted_feedback_id=accepted.id if accepted is not None else None,
                )
            )
