"""The answer stream over HTTP, with the real ChatService and storage.

Only the answer pipeline (search index + LLM, the external edge) is replaced by a script.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from assistant.asking.answer import Answer, Citation, PipelineEvent
from assistant.errors import IndexNotReady
from assistant.services import Services
from assistant.settings import Settings
from assistant.storage.models import AuditEntry, Message, ReviewItem, ReviewState
from tests.web.conftest import provisioned_app

SOURCES = [
    Citation(1, "medical/knee", "Knee care", "https://example.org/k", "medical", 0, 30, 0.9),
    Citation(2, "medical/ice", "Ice packs", "", "medical", 5, 25, 0.7),
]
# Text that would break a naive SSE writer: blank lines and a fake event inside a token.
TRICKY = "Rest.\n\nevent: done\ndata: {}\n"
TOKENS = ["Rest and ", "ice help [1]. ", TRICKY]


class ScriptedPipeline:
    def __init__(self) -> None:
        self.flags: list[str] = []
        self.fail_with: Exception | None = None
        self.questions: list[tuple[str, str | None]] = []
        self.histories: list[tuple[Any, ...]] = []

    def stream(
        self,
        question: str,
        collection: str | None = None,
        *,
        history: tuple[Any, ...] = (),
        options: Any = None,
        use_cache: bool = True,
    ) -> Iterator[PipelineEvent]:
        self.questions.append((question, collection))
        self.histories.append(tuple(history))
        yield PipelineEvent("sources", SOURCES)
        for token in TOKENS[:2]:
            yield PipelineEvent("token", token)
        if self.fail_with is not None:
            raise self.fail_with
        yield PipelineEvent("token", TOKENS[2])
        yield PipelineEvent(
            "done",
            Answer(
                text="".join(TOKENS).strip(),
                citations=[SOURCES[0]],
                sources=SOURCES,
                flags=list(self.flags),
                retrieval_score=0.9,
            ),
        )


class ScriptedServices(Services):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.script = ScriptedPipeline()

    @property  # type: ignore[override]
    def pipeline(self) -> ScriptedPipeline:
        return self.script


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = provisioned_app(settings, ScriptedServices(settings))
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    yield app
    app.extensions["assistant"].close()


@pytest.fixture
def script(app: Flask) -> ScriptedPipeline:
    return app.extensions["assistant"].script  # type: ignore[no-any-return]


def parse_sse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    assert body.endswith("\n\n")
    for block in body[:-2].split("\n\n"):
        lines = block.split("\n")
        assert len(lines) == 2, block
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ")
        events.append((lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])))
    return events


def test_chat_ask_streams_sources_tokens_and_done(client_for, script, db) -> None:  # type: ignore[no-untyped-def]
    client = client_for("user")
    response = client.post(
        "/chat/ask", json={"question": "How do I treat a sore knee?", "collection": "medical"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    events = parse_sse(response.get_data(as_text=True))

    kinds = [kind for kind, _ in events]
    assert kinds == ["sources", "token", "token", "token", "done"]
    assert [c["n"] for c in events[0][1]["citations"]] == [1, 2]
    assert [data["text"] for kind, data in events if kind == "token"] == TOKENS
    done = events[-1][1]
    assert done["answer"] == "".join(TOKENS).strip()
    assert [c["doc_id"] for c in done["citations"]] == ["medical/knee"]
    assert done["flagged"] is False and done["held"] is False
    assert script.questions == [("How do I treat a sore knee?", "medical")]

    # The turn is stored under this user, and readable back.
    conversation = client.get(f"/api/conversations/{done['conversation_id']}").get_json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    assert conversation["messages"][1]["id"] == done["message_id"]
    assert conversation["collection"] == "medical"

    # A follow-up continues the same conversation.
    again = client.post(
        "/chat/ask",
        json={"question": "And after a week?", "conversation_id": done["conversation_id"]},
    )
    assert (
        parse_sse(again.get_data(as_text=True))[-1][1]["conversation_id"]
        == (done["conversation_id"])
    )
    with db.session() as s:
        assert len(s.scalars(select(Message)).all()) == 4
    # ... and is answered with the conversation's earlier turn and what its answer cited.
    assert script.histories[0] == ()
    (earlier,) = script.histories[1]
    assert earlier.question == "How do I treat a sore knee?"
    assert earlier.cited_titles == ("Knee care",)
    # Every source given is stored with the answer, and where it came from.
    with db.session() as s:
        stored = s.get(Message, done["message_id"])
        assert [c["n"] for c in stored.sources] == [1, 2] and stored.origin == "model"
    assert [c["n"] for c in done["sources"]] == [1, 2]
    assert done["abstained"] is False and done["origin"] == "model"


def test_api_ask_returns_the_done_payload(client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for("user").post("/api/ask", json={"question": "What helps a knee?"})
    assert response.status_code == 200
    data = response.get_json()
    assert data["answer"].startswith("Rest and ice help [1].")
    assert {"message_id", "conversation_id", "citations", "flagged"} <= set(data)


def test_a_failure_mid_stream_ends_with_an_error_event(client_for, script) -> None:  # type: ignore[no-untyped-def]
    script.fail_with = IndexNotReady("No index has been built yet.")
    response = client_for("user").post("/chat/ask", json={"question": "What helps a knee?"})
    assert response.status_code == 200  # the stream had started
    events = parse_sse(response.get_data(as_text=True))
    assert [kind for kind, _ in events] == ["sources", "token", "token", "error"]
    assert events[-1][1] == {"error": "index_not_ready", "message": "No index has been built yet."}


def test_api_ask_maps_a_stream_error_to_its_status(client_for, script) -> None:  # type: ignore[no-untyped-def]
    script.fail_with = IndexNotReady("No index has been built yet.")
    response = client_for("user").post("/api/ask", json={"question": "What helps a knee?"})
    assert response.status_code == 503
    assert response.get_json() == {
        "error": "index_not_ready",
        "message": "No index has been built yet.",
    }
    script.fail_with = RuntimeError("boom with patient details")
    response = client_for("user").post("/api/ask", json={"question": "What helps a knee?"})
    assert response.status_code == 500
    assert "patient" not in response.get_data(as_text=True)


def test_flagged_answer_goes_to_review_and_is_approved(client_for, script, db, accounts) -> None:  # type: ignore[no-untyped-def]
    script.flags = ["low_retrieval_confidence"]
    done = client_for("user").post("/api/ask", json={"question": "Is this mole harmful?"})
    assert done.get_json()["flagged"] is True

    reviewer = client_for("reviewer")
    page = reviewer.get("/review").get_data(as_text=True)
    assert "Is this mole harmful?" in page
    assert "low_retrieval_confidence" in page
    with db.session() as s:
        item = s.scalars(select(ReviewItem)).one()
    decided = reviewer.post(f"/review/{item.id}", json={"action": "approve"})
    assert decided.status_code == 200
    with db.session() as s:
        assert s.get(ReviewItem, item.id).state is ReviewState.APPROVED
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "review.approve")).one()
    assert entry.actor_id == accounts["reviewer"].id
