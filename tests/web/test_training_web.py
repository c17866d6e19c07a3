"""The admin training page and its JSON endpoints: roles, validation, datasets, schedule."""

from __future__ import annotations

import json

from sqlalchemy import select

from assistant.storage.models import Dataset, Job, ModelState, ModelVersion, utcnow
from training.datasets import write_dataset
from training.examples import Example


def add_dataset(db, data_dir) -> int:  # type: ignore[no-untyped-def]
    files = write_dataset(
        data_dir / "datasets",
        1,
        [Example("What is asthma?", "[1] Asthma\nA lung disease.", "A disease of the lungs.")],
        [Example("What is gout?", "", "A kind of arthritis.")],
        [],
        {"review_ids": [1]},
        "Answer.",
    )
    with db.session() as s:
        row = Dataset(
            version=1,
            content_hash=files.content_hash,
            n_train=1,
            n_validation=1,
            path=str(files.path),
            provenance={"stats": {"kept": 2}},
        )
        s.add(row)
        s.flush()
        return row.id


def test_only_admins_get_in(client_for) -> None:  # type: ignore[no-untyped-def]
    assert client_for("user").get("/admin/training").status_code == 403
    assert client_for("reviewer").get("/api/training/runs").status_code == 403
    anonymous = client_for(None).get("/api/training/runs")
    assert anonymous.status_code == 401 and set(anonymous.get_json()) == {"error", "message"}
    page = client_for("admin").get("/admin/training")
    assert page.status_code == 200 and b"Learning loop" in page.data
    assert b"training.js" in page.data and b"<script>" not in page.data  # CSP: no inline code


def test_runs_are_validated_and_queued(client_for, db, settings) -> None:  # type: ignore[no-untyped-def]
    admin = client_for("admin")
    no_dataset = admin.post("/api/training/runs", json={})
    assert no_dataset.status_code == 400 and "no dataset" in no_dataset.get_json()["message"]
    dataset_id = add_dataset(db, settings.data_dir)
    for body in (
        {"epochs": 0},
        {"method": "prefix"},
        {"learning_rate": "fast"},
        {"rank": 4},
        {"quantization": "q2"},
        {"dataset_id": 99},
        # Past the database's 64-bit integers, or infinite: a 500 once (found by Schemathesis).
        {"dataset_id": -(2**89)},
        {"dataset_id": 2**63},
        {"dataset_id": float("inf")},
    ):
        response = admin.post(
            "/api/training/runs", data=json.dumps(body), content_type="application/json"
        )
        assert response.status_code in (400, 404), (body, response.data)
        assert set(response.get_json()) == {"error", "message"}
    assert admin.post("/api/training/runs", data="x").status_code == 400  # not JSON

    queued = admin.post("/api/training/runs", json={"epochs": 2, "r": 4, "dataset_id": dataset_id})
    assert queued.status_code == 202
    with db.session() as s:
        job = s.get(Job, queued.get_json()["job_id"])
        assert job.kind == "training" and job.params["config"] == {"epochs": 2, "r": 4}
        assert job.params["dataset_id"] == dataset_id and job.params["quantization"] == "q8_0"
    runs = admin.get("/api/training/runs").get_json()["runs"]
    assert runs[0]["id"] == job.id and runs[0]["state"] == "queued"


def test_datasets_listed_and_downloadable(client_for, db, settings) -> None:  # type: ignore[no-untyped-def]
    dataset_id = add_dataset(db, settings.data_dir)
    admin = client_for("admin")
    listed = admin.get("/api/training/datasets").get_json()["datasets"]
    assert [(d["id"], d["n_train"], d["n_validation"]) for d in listed] == [(dataset_id, 1, 1)]
    alpaca = admin.get(listed[0]["exports"]["alpaca"])
    assert alpaca.status_code == 200 and "attachment" in alpaca.headers["Content-Disposition"]
    assert json.loads(alpaca.data)[0]["output"] == "A disease of the lungs."
    chat = admin.get(listed[0]["exports"]["sharegpt"]).data.decode().splitlines()
    assert json.loads(chat[0])["messages"][-1] == {
        "role": "assistant",
        "content": "A disease of the lungs.",
    }
    assert admin.get(f"/admin/training/datasets/{dataset_id}/csv").status_code == 404


def test_schedule_round_trip_and_validation(client_for) -> None:  # type: ignore[no-untyped-def]
    admin = client_for("admin")
    saved = admin.put("/api/training/schedule", json={"enabled": True, "interval_minutes": 5})
    assert saved.status_code == 200 and saved.get_json()["schedule"]["interval_minutes"] == 5
    for body in (
        {"interval_minutes": 0},
        {"enabled": "yes"},
        {"min_new_examples": 1.5},
        {"cron": "*"},
    ):
        assert admin.put("/api/training/schedule", json=body).status_code == 400, body
    got = admin.get("/api/training/schedule").get_json()
    assert got["schedule"] == {"enabled": True, "interval_minutes": 5, "min_new_examples": 50}
    assert got["new_examples"] == 0


def test_promote_and_rollback_through_the_registry(client_for, db, settings) -> None:  # type: ignore[no-untyped-def]
    admin = client_for("admin")
    assert admin.post("/api/training/rollback", json={}).status_code == 409  # nothing earlier
    model = settings.data_dir / "m.gguf"
    model.write_bytes(b"GGUF")
    with db.session() as s:
        rejected = ModelVersion(name="bad", base_path=str(model), state=ModelState.REJECTED)
        good = ModelVersion(name="good", base_path=str(model))
        base = ModelVersion(
            name="base0",
            base_path=str(model),
            state=ModelState.ACTIVE,
            is_active=True,
            activated_at=utcnow(),
        )
        s.add_all([rejected, good, base])
        s.flush()
        ids = rejected.id, good.id, base.id
    assert admin.post(f"/api/training/models/{ids[0]}/promote", json={}).status_code == 409
    promoted = admin.post(f"/api/training/models/{ids[1]}/promote", json={})
    assert promoted.status_code == 200 and promoted.get_json()["state"] == "active"
    back = admin.post("/api/training/rollback", json={})
    assert back.status_code == 200 and back.get_json()["id"] == ids[2]
    with db.session() as s:
        assert s.scalar(select(ModelVersion.name).where(ModelVersion.is_active)) == "base0"


def test_forms_need_the_csrf_token(csrf_app, accounts) -> None:  # type: ignore[no-untyped-def]
    client = csrf_app.test_client()
    admin = accounts["admin"]
    client.post("/login", data={"email": admin.email, "password": admin.password})
    assert client.post("/admin/training/datasets").status_code == 400
    assert client.put("/api/training/schedule", json={"enabled": True}).status_code == 400


def test_openapi_entries_cover_the_json_endpoints(client_for) -> None:  # type: ignore[no-untyped-def]
    doc = client_for("admin").get("/openapi.json").get_json()
    paths = doc["paths"]
    assert set(paths) >= {
        "/api/training/runs",
        "/api/training/datasets",
        "/api/training/schedule",
        "/api/training/rollback",
    }
    for path, item in paths.items():
        if path.startswith("/api/training/"):
            for op in item.values():
                assert op["responses"] and op["summary"] and op["tags"] == ["training"]
    run = paths["/api/training/runs"]["post"]["requestBody"]["content"]["application/json"]
    assert run["schema"] == {"$ref": "#/components/schemas/RunRequest"}
    # The model that validates the body is the one documented, bounds included.
    schema = doc["components"]["schemas"]["RunRequest"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["epochs"]["anyOf"][0] == {
        "maximum": 100,
        "minimum": 1,
        "type": "integer",
    }


def test_the_loss_curve_is_drawn_while_the_run_trains(client_for, db) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        waiting = Job(kind="training", params={}, result={})
        training = Job(
            kind="training",
            params={},
            result={"loss_points": [{"step": i, "train_loss": 2.0 / i} for i in range(1, 6)]},
        )
        s.add_all([waiting, training])
        s.flush()
        waiting_id, training_id = waiting.id, training.id
    admin = client_for("admin")
    empty = admin.get(f"/admin/training/runs/{waiting_id}/loss.svg")
    assert empty.status_code == 200 and empty.mimetype == "image/svg+xml"
    assert b"No training steps yet" in empty.data
    live = admin.get(f"/admin/training/runs/{training_id}/loss.svg")
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    line = live.data.split(b'points="')[1].split(b'"')[0].split()
    assert len(line) == 5 and b"5 steps" in live.data


def test_a_job_whose_message_cannot_be_sent_fails_at_once(app, client_for, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("broker down")

    monkeypatch.setattr(app.extensions["celery"], "send_task", broken)
    response = client_for("admin").post("/api/training/datasets", json={})
    assert response.status_code == 503
    assert response.get_json()["error"] == "service_unavailable"
    with db.session() as s:
        job = s.scalars(select(Job).order_by(Job.id.desc())).first()
        assert job is not None and job.state.value == "failed"
