"""The admin overview, the jobs feed and adding accounts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assistant.accounts.users import authenticate
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
    assert 'legal</a></td><td class="num">1</td><td class="num">5</td>' in html
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


def test_upload_stores_the_file_and_queues_an_ingest_job(
    client_for, accounts, db, settings
) -> None:  # type: ignore[no-untyped-def]
    import io

    client = client_for("admin")
    response = client.post(
        "/admin/corpus/upload",
        data={
            "collection": "medical",
            "files": (io.BytesIO(b"# Knee care\n\nRest and ice."), "../../evil name.md"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("#jobs")
    stored = settings.data_dir / "uploads" / "medical" / "evil_name.md"
    assert stored.read_bytes() == b"# Knee care\n\nRest and ice."
    with db.session() as s:
        job = s.scalars(select(Job)).one()
        assert job.kind == "ingest" and job.state == JobState.QUEUED
        assert job.params == {"paths": [str(stored)], "collection": "medical", "reason": "upload"}
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "corpus.upload")).one()
        assert entry.target == f"job:{job.id}" and entry.details["files"] == ["evil_name.md"]
    page = client.get("/admin/corpus").get_data(as_text=True)
    assert "evil_name.md" in page and f'data-job-id="{job.id}"' in page
    # Re-indexing the collection's uploads is a second job over the same files.
    assert client.post("/api/admin/reindex", json={"collection": "medical"}).status_code == 202
    assert client.get("/api/jobs?kind=ingest").get_json()["jobs"][0]["state"] == "queued"


@pytest.mark.parametrize(
    ("name", "collection", "message"),
    [
        ("tool.exe", "medical", "Upload a file of one of these types"),
        ("notes.md", "astrology", "Unknown collection"),
        (".md", "medical", "Upload a file of one of these types"),
    ],
)
def test_bad_uploads_are_refused_with_a_message(client_for, db, name, collection, message) -> None:  # type: ignore[no-untyped-def]
    import io

    client = client_for("admin")
    response = client.post(
        "/admin/corpus/upload",
        data={"collection": collection, "files": (io.BytesIO(b"x"), name)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert message in response.get_data(as_text=True)
    with db.session() as s:
        assert s.scalars(select(Job)).first() is None


def test_the_json_api_uploads_text_and_pdf_files(client_for, db, settings) -> None:  # type: ignore[no-untyped-def]
    import base64

    client = client_for("admin")
    pdf = b"%PDF-1.4 not really, but stored as given"
    response = client.post(
        "/api/admin/documents",
        json={
            "collection": "legal",
            "files": [
                {"filename": "lease.md", "text": "# Lease\n\nRent is due monthly."},
                {"filename": "scan.pdf", "base64": base64.b64encode(pdf).decode()},
            ],
        },
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["files"] == ["lease.md", "scan.pdf"]
    folder = settings.data_dir / "uploads" / "legal"
    assert (folder / "lease.md").read_text() == "# Lease\n\nRent is due monthly."
    assert (folder / "scan.pdf").read_bytes() == pdf
    with db.session() as s:
        job = s.get(Job, response.get_json()["job_id"])
        assert job.kind == "ingest" and job.params["collection"] == "legal"
    for body, message in (
        ({"collection": "legal", "files": []}, "'files': List should have at least 1 item"),
        ({"collection": "legal", "files": [{"filename": "a.md"}]}, "exactly one of"),
        ({"collection": "legal", "files": [{"filename": "a.pdf", "base64": "@@"}]}, "base64"),
        ({"collection": "legal", "files": [{"filename": "a.exe", "text": "x"}]}, "types"),
        ({"collection": "astrology", "files": [{"filename": "a.md", "text": "x"}]}, "Unknown"),
        ({"collection": "legal", "files": [{"filename": "a.md", "text": ""}]}, "empty"),
        (
            {
                "collection": "legal",
                "files": [{"filename": "a b.md", "text": "x"}, {"filename": "a_b.md", "text": "y"}],
            },
            "both named a_b.md",
        ),
    ):
        refused = client.post("/api/admin/documents", json=body)
        assert refused.status_code == 400 and message in refused.get_json()["message"], body
    # One bad file refuses the whole upload: the good file beside it is not kept either.
    mixed = client.post(
        "/api/admin/documents",
        json={
            "collection": "legal",
            "files": [
                {"filename": "kept-not.md", "text": "# Note\n\nA clause."},
                {"filename": "empty.md", "text": ""},
            ],
        },
    )
    assert mixed.status_code == 400 and "empty" in mixed.get_json()["message"]
    assert sorted(p.name for p in folder.iterdir()) == ["lease.md", "scan.pdf"]
    with db.session() as s:
        assert len(s.scalars(select(Job)).all()) == 1  # nothing queued for refused uploads


def test_documents_and_their_chunks(client_for, db, app) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        s.add(
            Document(
                doc_id="medical/knee",
                collection="medical",
                title="Knee <care>",
                text="x",
                content_hash="h",
                n_chunks=2,
            )
        )
    client = client_for("admin")
    page = client.get("/admin/corpus?q=knee").get_data(as_text=True)
    assert "Knee &lt;care&gt;" in page and "/admin/corpus/documents/medical/knee" in page
    assert (
        "Knee"
        not in client.get("/admin/corpus?q=elbow")
        .get_data(as_text=True)
        .split('id="docs-title"')[1]
    )
    data = client.get("/api/admin/documents/medical/knee").get_json()
    assert data["document"]["title"] == "Knee <care>" and data["chunks"] == []  # no index yet
    assert client.get("/api/admin/documents?collection=legal").get_json()["total"] == 0


def test_quality_figures_per_day_and_model_version(client_for, accounts, store_turn, db) -> None:  # type: ignore[no-untyped-def]
    from assistant.storage.models import Message, ModelVersion

    turn = store_turn(accounts["user"].id, flags=["missing_citation"])
    with db.session() as s:
        version = ModelVersion(name="base-v1", base_path="/m.gguf")
        s.add(version)
        s.flush()
        s.get(Message, turn.answer_id).model_version_id = version.id
        for rating in (1, 1, 1, -1):
            s.add(Feedback(message_id=turn.answer_id, rating=rating))
    client = client_for("admin")
    data = client.get("/api/admin/quality?days=7").get_json()
    assert len(data["days"]) == 7
    today = data["days"][-1]
    assert (today["questions"], today["thumbs_up"], today["thumbs_down"], today["flagged"]) == (
        1,
        3,
        1,
        1,
    )
    assert data["versions"] == [
        {"version": "base-v1", "thumbs_up": 3, "thumbs_down": 1, "rate": 0.75}
    ]
    assert data["flag_reasons"] == {"missing_citation": 1}
    page = client.get("/admin/quality").get_data(as_text=True)
    assert page.count("<svg") == 3 and "base-v1 (4)" in page and "75%" in page


def test_roles_change_with_an_audit_entry_and_the_last_admin_stays(
    client_for, accounts, db
) -> None:  # type: ignore[no-untyped-def]
    client = client_for("admin")
    user = accounts["user"]
    changed = client.patch(f"/api/admin/users/{user.id}", json={"role": "reviewer"})
    assert changed.status_code == 200 and changed.get_json()["role"] == "reviewer"
    disabled = client.post(f"/admin/users/{user.id}", data={"role": "reviewer", "active": "0"})
    assert disabled.status_code == 302
    with db.session() as s:
        assert s.get(User, user.id).is_active is False
        details = [
            e.details
            for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "user.update"))
        ]
    assert details == [{"role": ["user", "reviewer"]}, {"active": [True, False]}]
    last = client.patch(f"/api/admin/users/{accounts['admin'].id}", json={"role": "user"})
    assert last.status_code == 409 and last.get_json()["error"] == "conflict"
    log = client.get("/admin/audit?action=user.update").get_data(as_text=True)
    assert log.count("<code>user.update</code>") == 2
    assert client.get("/api/admin/audit?action=user.").get_json()["total"] == 2


def test_an_anonymous_upload_is_refused_at_the_normal_body_limit(csrf_app) -> None:  # type: ignore[no-untyped-def]
    from io import BytesIO

    body = {"files": (BytesIO(b"x" * (2 * 1024 * 1024)), "big.txt")}  # over 1 MiB
    response = csrf_app.test_client().post(
        "/admin/corpus/upload", data=body, content_type="multipart/form-data"
    )
    # Refused before the body is parsed at the admins' 200 MiB limit.
    assert response.status_code == 413


def test_an_admin_deletes_a_document(client_for, db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        s.add(
            Document(
                doc_id="medical/gone",
                collection="medical",
                title="Gone",
                text="x",
                content_hash="h",
            )
        )
    client = client_for("admin")
    page = client.get("/admin/corpus/documents/medical/gone").get_data(as_text=True)
    assert "/admin/corpus/documents/medical/gone/delete" in page
    response = client.post("/admin/corpus/documents/medical/gone/delete")
    assert response.status_code == 302
    with db.session() as s:
        assert s.scalars(select(Document).where(Document.doc_id == "medical/gone")).first() is None
    assert client.get("/admin/corpus/documents/medical/gone").status_code == 404


def test_an_admin_deletes_an_account_and_its_token_stops_working(
    client_for, accounts, store_turn, db
) -> None:  # type: ignore[no-untyped-def]
    from assistant.accounts.tokens import create_token

    user, other = accounts["user"], accounts["other"]
    store_turn(user.id)
    token, _ = create_token(db, user.email, "script")
    signed_in = client_for("user")
    bearer = {"Authorization": f"Bearer {token}"}
    assert signed_in.get("/v1/models", headers=bearer).status_code == 200
    admin = client_for("admin")
    page = admin.get("/admin/users").get_data(as_text=True)
    assert f'action="/admin/users/{user.id}/delete"' in page and "data-confirm" in page

    removed = admin.delete(f"/api/admin/users/{user.id}")
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json()["conversations"] == 1 and removed.get_json()["api_tokens"] == 1
    assert signed_in.get("/api/conversations").status_code == 401
    assert signed_in.get("/v1/models", headers=bearer).status_code == 401
    assert admin.delete(f"/api/admin/users/{user.id}").status_code == 404

    # The page's form does the same; the last admin stays.
    assert admin.post(f"/admin/users/{other.id}/delete").status_code == 302
    last = admin.delete(f"/api/admin/users/{accounts['admin'].id}")
    assert last.status_code == 409 and last.get_json()["error"] == "conflict"
    with db.session() as s:
        assert {u.email for u in s.scalars(select(User))} == {
            accounts["admin"].email,
            accounts["reviewer"].email,
        }
        deleted = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.delete")).all()
        assert sorted(e.target for e in deleted) == sorted([f"user:{user.id}", f"user:{other.id}"])
