"""The admin overview, the jobs feed and adding accounts."""

from __future__ import annotations

from sqlalchemy import select

from assistant.storage.models import (
    AuditEntry,
    Document,
    Feedback,
    Job,
    JobState,
    ReviewItem,
    Role,
    User,
)
from assistant.users import authenticate


def _seed(db, accounts, store_turn) -> None:  # type: ignore[no-untyped-def]
    turn = store_turn(accounts["user"].id, flags=["unsafe_advice"])
    with db.session() as s:
        for doc_id, collection, chunks in (
            ("m1", "medical", 3),
            ("m2", "medical", 4),
            ("l1", "legal", 5),
        ):
            s.add(
                Document(
                    doc_id=doc_id,
                    collection=collection,
                    title=doc_id,
                    text="x",
                    content_hash=doc_id,
                    n_chunks=chunks,
                )
            )
        for rating in (1, 1, -1):
            s.add(Feedback(message_id=turn.answer_id, rating=rating))
        s.add(ReviewItem(message_id=turn.answer_id, reasons=["unsafe_advice"]))
        s.add(Job(kind="train", state=JobState.RUNNING, progress=0.42, message="epoch 2 of 5"))


def test_overview_counts(client_for, accounts, store_turn, db) -> None:  # type: ignore[no-untyped-def]
    _seed(db, accounts, store_turn)
    html = client_for("admin").get("/admin").get_data(as_text=True)

    def stat(value: int, label: str) -> bool:
        return f'{value}</span> <span class="stat-label">{label}</span>' in html

    assert stat(3, "documents")
    assert stat(12, "chunks")
    assert stat(1, "questions") and stat(1, "answers") and stat(1, "flagged")
    assert stat(2, "thumbs up") and stat(1, "thumbs down")
    assert stat(1, "pending reviews")
    assert 'medical</a></td><td class="num">2</td><td class="num">7</td>' in html
    assert '<td>legal</td><td class="num">1</td><td class="num">5</td>' in html
    assert '<progress max="1" value="0.42"' in html
    assert "42%" in html and "epoch 2 of 5" in html
    assert 'src="/static/admin.js"' in html


def test_jobs_feed_for_the_progress_figures(client_for, accounts, store_turn, db) -> None:  # type: ignore[no-untyped-def]
    _seed(db, accounts, store_turn)
    jobs = client_for("admin").get("/api/jobs").get_json()["jobs"]
    assert len(jobs) == 1
    assert jobs[0]["state"] == "running"
    assert jobs[0]["progress"] == 0.42
    assert jobs[0]["finished_at"] is None


def test_admin_adds_an_account(client_for, accounts, db) -> None:  # type: ignore[no-untyped-def]
    client = client_for("admin")
    response = client.post(
        "/admin/users",
        data={
            "email": "New.Reviewer@example.org",
            "password": "a-long-password",
            "role": "reviewer",
        },
    )
    assert response.status_code == 302
    user = authenticate(db, "new.reviewer@example.org", "a-long-password")
    assert user is not None and user.role is Role.REVIEWER
    with db.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.create")).one()
    assert entry.actor_id == accounts["admin"].id and entry.target == f"user:{user.id}"
    assert "created" in client.get("/admin").get_data(as_text=True)


def test_bad_account_is_refused_with_a_message(client_for, accounts, db) -> None:  # type: ignore[no-untyped-def]
    client = client_for("admin")
    for data, message in (
        ({"email": accounts["user"].email, "password": "a-long-password"}, "already exists"),
        ({"email": "x@example.org", "password": "short"}, "at least 8"),
        ({"email": "x@example.org", "password": "a-long-password", "role": "root"}, "Unknown role"),
    ):
        assert client.post("/admin/users", data=data).status_code == 302
        assert message in client.get("/admin").get_data(as_text=True)
    with db.session() as s:
        assert s.scalar(select(User).where(User.email == "x@example.org")) is None
