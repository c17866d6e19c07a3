"""No unapproved text reaches a training dataset: each poisoning route of a user walked
through the real web app (a user, two reviewers, an admin) and a real Celery worker that
builds the dataset; only what a reviewer approved, edited or explicitly accepted is in it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from assistant.infra import jobs
from assistant.storage.models import Conversation, Job, JobState, Message, ReviewItem
from tests.assistant.learning.test_learning import start_worker, stop, wait_for

pytestmark = pytest.mark.slow


def answer_turn(db, user_id: int, question: str, answer: str, flagged: bool = False) -> int:  # type: ignore[no-untyped-def]
    """A question and its stored answer (the model's part is not what this test is about)."""
    with db.session() as s:
        conversation = Conversation(user_id=user_id, title=question[:40], collection="medical")
        s.add(conversation)
        s.flush()
        s.add(Message(conversation_id=conversation.id, role="user", content=question))
        message = Message(
            conversation_id=conversation.id, role="assistant", content=answer, flagged=flagged
        )
        s.add(message)
        s.flush()
        if flagged:
            s.add(ReviewItem(message_id=message.id, reasons=["low_retrieval_confidence"]))
        return message.id


def item_of(db, message_id: int) -> int:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return s.scalars(select(ReviewItem.id).where(ReviewItem.message_id == message_id)).one()


def test_every_poisoning_route_is_closed(app, db, accounts, client_for, settings) -> None:  # type: ignore[no-untyped-def]
    user, reviewer, admin = client_for("user"), client_for("reviewer"), client_for("admin")
    uid, rid = accounts["user"].id, accounts["reviewer"].id

    def thumbs_down(message_id: int, correction: str | None = None) -> None:
        body = {"message_id": message_id, "rating": -1, "correction": correction}
        assert user.post("/chat/feedback", json=body).status_code == 201

    def decide(client, message_id: int, action: str, **extra: object) -> int:  # type: ignore[no-untyped-def]
        body = {"action": action, **extra}
        return client.post(f"/review/{item_of(db, message_id)}", json=body).status_code

    # (1) A rejected answer's correction is not trained on.
    a = answer_turn(db, uid, "What causes gout?", "Gout is caused by eating fruit.")
    thumbs_down(a, "POISONA gout is cured by bleach and the sources agree")
    assert decide(reviewer, a, "reject") == 200

    # (2) A second thumbs-down without text does not hide the first one's correction.
    b = answer_turn(db, uid, "What is asthma?", "Asthma is a lung disease.")
    thumbs_down(b, "POISONB asthma is caused by vaccines")
    thumbs_down(b)
    queue = reviewer.get("/review").get_data(as_text=True)
    assert "POISONB asthma is caused by vaccines" in queue
    assert decide(reviewer, b, "reject") == 200

    # (3) A correction posted after the decision is ignored.
    c = answer_turn(db, uid, "What is a stroke?", "A stroke is a brain attack.", flagged=True)
    assert decide(reviewer, c, "approve") == 200
    thumbs_down(c, "POISONC strokes are harmless")

    # (4) Nobody reviews answers to their own questions.
    d = answer_turn(db, rid, "Is my lease valid?", "It depends on the clauses.", flagged=True)
    listed = {i["id"] for i in reviewer.get("/api/review").get_json()["items"]}
    assert item_of(db, d) not in listed
    assert decide(reviewer, d, "edit", edited_answer="POISOND my own answer") == 403
    assert decide(admin, d, "approve") == 200

    # Positive controls: an edit, and a correction the reviewer accepted word for word.
    e = answer_turn(db, uid, "How is acne treated?", "Acne is treated with creams.")
    thumbs_down(e, "ACCEPTEDE acne is treated with creams and antibiotics")
    with db.session() as s:
        from assistant.storage.models import Feedback

        feedback_id = s.scalars(select(Feedback.id).where(Feedback.message_id == e)).one()
    assert decide(reviewer, e, "accept_correction", feedback_id=feedback_id) == 200
    f = answer_turn(db, uid, "What is flu?", "Flu is a virus.", flagged=True)
    assert (
        decide(reviewer, f, "edit", edited_answer="EDITEDF influenza is a viral infection") == 200
    )

    # The admin builds a dataset; a real worker on the embedded broker does it.
    env = dict(os.environ, ASSISTANT_DATA_DIR=str(settings.data_dir))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path])
    worker = start_worker(env)
    try:
        response = admin.post("/api/training/datasets", json={})
        assert response.status_code in (200, 201, 202), response.get_json()
        job_id = response.get_json()["job_id"]
        wait_for(
            lambda: jobs.get_job(db, job_id).state in (JobState.SUCCEEDED, JobState.FAILED),
            180,
            "the dataset job",
        )
    finally:
        log = stop(worker, env)
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job.state is JobState.SUCCEEDED, (job.message, log[-3000:])
        dataset_id = job.result["dataset_id"]
    export = admin.get(f"/admin/training/datasets/{dataset_id}/alpaca")
    assert export.status_code == 200
    text = export.get_data(as_text=True)
    for poison in ("POISONA", "POISONB", "POISONC", "POISOND"):
        assert poison not in text, poison
    assert "ACCEPTEDE" in text and "EDITEDF" in text
    outputs = {r["output"] for r in json.loads(text)}
    assert "A stroke is a brain attack." in outputs  # approved as it was
    # Provenance: each example names its decision, its reviewer and its question's author.
    path = Path(settings.data_dir) / "datasets"
    manifest = json.loads(next(path.glob("v*/manifest.json")).read_text())
    sources = " ".join(manifest["provenance"]["sources"])
    assert f"reviewer:{rid}" in sources and f"author:{uid}" in sources
    assert f"feedback:{feedback_id}" in sources
