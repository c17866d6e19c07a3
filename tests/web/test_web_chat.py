"""The chat pages and JSON views on rows stored directly (no model, no index)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assistant.storage.models import Document, Feedback, ReviewItem, ReviewState


def test_chat_page_lists_conversations_and_shows_one(client_for, accounts, store_turn) -> None:  # type: ignore[no-untyped-def]
    turn = store_turn(accounts["user"].id)
    client = client_for("user")
    index = client.get("/")
    assert index.status_code == 200
    html = index.get_data(as_text=True)
    assert f'href="/c/{turn.conversation_id}"' in html
    assert "Sore knee" in html
    assert 'name="csrf-token"' in html
    assert 'src="/static/chat.js"' in html
    for option in ('value="">All collections', 'value="medical"', 'value="legal"'):
        assert option in html

    page = client.get(f"/c/{turn.conversation_id}").get_data(as_text=True)
    assert "How do I treat a sore knee?" in page
    assert "Rest and ice help [1]." in page
    assert f'data-message-id="{turn.answer_id}"' in page
    assert '"doc_id": "medical/knee-care"' in page  # the citations, for the page script
    assert 'value="medical" selected' in page


def test_model_and_user_text_is_escaped(client_for, accounts, store_turn) -> None:  # type: ignore[no-untyped-def]
    attack = "<img src=x onerror=alert(1)>'\" </li><script>alert(2)</script>"
    turn = store_turn(accounts["user"].id, question=attack, answer=attack, title=attack)
    html = client_for("user").get(f"/c/{turn.conversation_id}").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_a_user_cannot_see_another_users_conversation(client_for, accounts, store_turn) -> None:  # type: ignore[no-untyped-def]
    theirs = store_turn(accounts["other"].id, title="Private matter", question="My secret")
    client = client_for("user")
    assert client.get(f"/c/{theirs.conversation_id}").status_code == 404
    response = client.get(f"/api/conversations/{theirs.conversation_id}")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert client.get("/api/conversations").get_json() == {"conversations": []}
    assert "Private matter" not in client.get("/").get_data(as_text=True)
    feedback = client.post("/chat/feedback", json={"message_id": theirs.answer_id, "rating": -1})
    assert feedback.status_code == 404
    # Not even an admin reads users' conversations through the chat views.
    assert client_for("admin").get(f"/c/{theirs.conversation_id}").status_code == 404
    # The owner does.
    owner = client_for("other")
    assert owner.get(f"/c/{theirs.conversation_id}").status_code == 200
    data = owner.get(f"/api/conversations/{theirs.conversation_id}").get_json()
    assert [m["content"] for m in data["messages"]] == ["My secret", "Rest and ice help [1]."]
    assert data["messages"][1]["citations"][0]["doc_id"] == "medical/knee-care"
    assert data["updated_at"][:4].isdigit()  # ISO 8601, not an HTTP date


def test_api_lists_own_conversations_newest_first(client_for, accounts, store_turn) -> None:  # type: ignore[no-untyped-def]
    first = store_turn(accounts["user"].id, title="First")
    second = store_turn(accounts["user"].id, title="Second")
    data = client_for("user").get("/api/conversations").get_json()
    assert [c["id"] for c in data["conversations"]] == [
        second.conversation_id,
        first.conversation_id,
    ]


def test_feedback_is_stored_and_thumbs_down_opens_a_review(
    client_for, accounts, store_turn, db
) -> None:  # type: ignore[no-untyped-def]
    turn = store_turn(accounts["user"].id)
    client = client_for("user")
    up = client.post("/chat/feedback", json={"message_id": turn.answer_id, "rating": 1})
    assert up.status_code == 201
    down = client.post(
        "/api/feedback",
        json={"message_id": turn.answer_id, "rating": -1, "reason": "Outdated"},
    )
    assert down.status_code == 201
    with db.session() as s:
        ratings = s.scalars(select(Feedback.rating).order_by(Feedback.id)).all()
        review = s.scalars(select(ReviewItem)).one()
    assert ratings == [1, -1]
    assert down.get_json()["id"] != up.get_json()["id"]
    assert review.state is ReviewState.PENDING and "thumbs_down" in review.reasons


@pytest.mark.parametrize(
    "body",
    [
        {"message_id": 1, "rating": 2},
        {"message_id": 1, "rating": True},
        {"message_id": "1", "rating": 1},
        {"rating": 1},
        {"message_id": 1, "rating": 1, "reason": 5},
        ["message_id", 1],
    ],
)
def test_feedback_refuses_malformed_bodies(client_for, accounts, store_turn, body) -> None:  # type: ignore[no-untyped-def]
    store_turn(accounts["user"].id)
    response = client_for("user").post("/chat/feedback", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_input"


@pytest.fixture
def document(db):  # type: ignore[no-untyped-def]
    text = "Introduction. " * 5 + "Ice reduces swelling." + " More text follows here." * 3
    with db.session() as s:
        s.add(
            Document(
                doc_id="medical/knee/ice",
                collection="medical",
                title="Ice for knees",
                source_url="https://example.org/ice",
                text=text,
                content_hash="0" * 64,
                n_chunks=1,
            )
        )
    return text


def test_passage_returns_the_span_in_its_context(client_for, document) -> None:  # type: ignore[no-untyped-def]
    start = document.index("Ice reduces")
    end = start + len("Ice reduces swelling.")
    response = client_for("user").get(f"/passage/medical/knee/ice?start={start}&end={end}")
    assert response.status_code == 200
    data = response.get_json()
    assert data["passage"] == "Ice reduces swelling."
    assert data["before"] + data["passage"] + data["after"] in document
    assert data["before"].endswith("Introduction. ")
    assert data["title"] == "Ice for knees"
    assert data["source_url"] == "https://example.org/ice"


@pytest.mark.parametrize(
    "query", ["", "?start=1", "?start=a&end=5", "?start=-1&end=5", "?start=9&end=3"]
)
def test_passage_needs_a_valid_span(client_for, document, query: str) -> None:  # type: ignore[no-untyped-def]
    response = client_for("user").get("/passage/medical/knee/ice" + query)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_input"


def test_unknown_passage_is_404(client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for("user").get("/passage/nope?start=0&end=5")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"question": ""}, 400),
        ({"question": 42}, 400),
        ({"question": "What is a tort?", "collection": "astrology"}, 400),
        ({"question": "What is a tort?", "conversation_id": "7"}, 400),
        ({"question": "What is a tort?", "conversation_id": 999_999}, 404),
    ],
)
@pytest.mark.parametrize("path", ["/chat/ask", "/api/ask"])
def test_bad_questions_are_refused_before_any_stream(
    client_for, body, status: int, path: str
) -> None:  # type: ignore[no-untyped-def]
    response = client_for("user").post(path, json=body)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert set(response.get_json()) == {"error", "message"}


def test_ask_into_someone_elses_conversation_is_404(client_for, accounts, store_turn) -> None:  # type: ignore[no-untyped-def]
    theirs = store_turn(accounts["other"].id)
    response = client_for("user").post(
        "/chat/ask", json={"question": "Tell me more", "conversation_id": theirs.conversation_id}
    )
    assert response.status_code == 404
    assert response.mimetype == "application/json"


def test_guard_replies_carry_no_check_your_sources_notice(client_for, accounts, store_turn) -> None:  # type: ignore[no-untyped-def]
    emergency = store_turn(accounts["user"].id, answer="Call 911 now.", flags=["guard:emergency"])
    mixed = store_turn(accounts["user"].id, flags=["low_retrieval_confidence", "guard:block"])
    client = client_for("user")
    page = client.get(f"/c/{emergency.conversation_id}").get_data(as_text=True)
    assert "Call 911 now." in page and "notice-flagged" not in page
    page = client.get(f"/c/{mixed.conversation_id}").get_data(as_text=True)
    assert "notice-flagged" in page and "(low_retrieval_confidence)" in page
    assert "guard:block" not in page
