"""A whole-product scan for personal data: PII-laden chats, feedback and reviews through the
real web app, a dataset build and a training run in a real Celery worker, then every table,
the answer cache, every byte of every file in the data folder and both processes' logs are
searched for each injected value.

It lives under ``tests/web`` because the web app is where the data enters, signed in as real
accounts with CSRF on (and it shares the web tests' cheap password hashing); the worker, the
learning loop, the model and the PII engine behind it are the real ones. CPU cost is kept low:
five documents, one retrieved passage, three training examples, one LoRA step and a one-item
gate; the training run itself (dense copy, step, GGUF export, gate) is most of the time.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import MetaData, create_engine, select

from assistant.accounts import tokens
from assistant.accounts.users import create_user
from assistant.corpus.ingest import ingest_documents
from assistant.infra.logging_setup import configure_logging, install_pii_filter
from assistant.services import Services
from assistant.settings import Settings, WebSettings
from assistant.storage import models
from tests.assistant.learning.learning_helpers import TINY_LEARNING
from tests.assistant.learning.test_learning import start_worker, stop
from tests.conftest import fixture_documents, services_with_shared_models
from tests.web.conftest import provisioned_app
from tests.web.test_web_end_to_end import parse_sse, sign_in

pytestmark = pytest.mark.slow

# Made-up personal data, distinctive enough that no corpus text or model vocabulary holds it.
FIRST, LAST = "Rosalind", "Quarrendon"
NEIGHBOUR = "Desmond Achterberg"
PHONE = "(312) 555-0187"
EMAIL = "rosalind.quarrendon@example.net"
SSN = "529-41-7736"
CARD = "4556 7375 8689 9855"
MRN = "7730419"
BIRTH_DATE = "03/27/1958"
STREET = "4821 Wexborough Lane"
# What is searched for: each value, each part of a name, and the digits of each number in any
# layout (a log or a file may have reformatted them).
NEEDLES = (
    FIRST,
    LAST,
    *NEIGHBOUR.split(),
    EMAIL,
    PHONE,
    "555-0187",
    "3125550187",
    SSN,
    "529417736",
    CARD,
    "4556737586899855",
    MRN,
    BIRTH_DATE,
    "Wexborough",
    "Evanston",
)

QUESTIONS = [
    f"Hello, I am {FIRST} {LAST}, date of birth {BIRTH_DATE}, MRN {MRN}. "
    "What are the symptoms of asthma?",
    f"{FIRST} again: I moved to {STREET}, Evanston; call me on {PHONE} or write to {EMAIL}. "
    "How is type 2 diabetes treated?",
]
API_HISTORY = f"My neighbour {NEIGHBOUR} gets bad headaches."
API_QUESTION = (
    f"My SSN is {SSN} and my card {CARD} was charged by the pharmacy. "
    "What medicines treat diabetes?"
)
CLEAN_QUESTION = "What causes migraine?"
CORRECTION = (
    f"{FIRST} {LAST} here (phone {PHONE}): asthma symptoms include wheezing, coughing, "
    "chest tightness and shortness of breath."
)
EDIT = (
    f"Type 2 diabetes is treated with healthy eating, exercise and metformin; {NEIGHBOUR} "
    f"(SSN {SSN}, {STREET}) should ask a doctor."
)
TOPICS = ("Asthma", "Diabetes", "Diabetes Medicines", "Diabetes Type 2", "Migraine")


@pytest.fixture(scope="session")
def dense_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dense copy of the served GGUF that training makes (~20 s); outside the data folder,
    as it is derived from the shipped model alone; ASSISTANT_TEST_DENSE_CACHE keeps one."""
    kept = os.environ.get("ASSISTANT_TEST_DENSE_CACHE")
    return Path(kept) if kept else tmp_path_factory.mktemp("dense-cache")


@pytest.fixture()
def services(tmp_path: Path, shared_models: Services) -> Iterator[Services]:
    """The product on a fresh data folder, with a few real documents in its index."""
    settings = Settings(
        data_dir=tmp_path / "data",
        web=WebSettings(admin_email="admin@example.org", admin_password="admin-password-1"),
        # One passage keeps prompts, answers, training examples and the gate's prompts short.
        retrieval={"top_k": 1},  # type: ignore[arg-type]
    )
    services = services_with_shared_models(settings, shared_models)
    services.db.upgrade()
    ingest_documents(services, [d for d in fixture_documents() if d.title in TOPICS])
    yield services
    services.close()


def worker_env(data_dir: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ, ASSISTANT_DATA_DIR=str(data_dir), ASSISTANT_LOG_LEVEL="DEBUG")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path])
    env["ASSISTANT_RETRIEVAL__TOP_K"] = "1"
    learning = {
        **TINY_LEARNING,
        "cache_dir": cache,
        # An example carries its served passage: ~500 tokens with the system prompt.
        "max_seq_len": 1024,
        "eval_validation_limit": 1,
        "regression_limit": 1,
        "eval_max_tokens": 8,
    }
    for key, value in learning.items():
        env[f"ASSISTANT_LEARNING__{key.upper()}"] = str(value)
    return env


@contextmanager
def product_logging(path: Path) -> Iterator[None]:
    """The web process's logging as ``assistant serve`` sets it up, at DEBUG, into ``path``:
    one root handler with the product's PII filter (pytest's capture is set aside meanwhile,
    and every level and handler is put back afterwards)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {
        name: logger.level
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    try:
        configure_logging("DEBUG")
        root.setLevel(logging.DEBUG)  # basicConfig leaves a root that has a handler alone
        install_pii_filter(handler)
        yield
    finally:
        handler.close()
        root.handlers = handlers
        root.setLevel(level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))


def ask(client: FlaskClient, csrf: str, question: str, conversation_id: int | None = None) -> dict:
    body: dict[str, Any] = {"question": question, "conversation_id": conversation_id}
    response = client.post("/chat/ask", json=body, headers={"X-CSRFToken": csrf})
    assert response.status_code == 200, response.get_data(as_text=True)
    events = parse_sse(response.get_data(as_text=True))
    kind, done = events[-1]
    assert kind == "done", events[-1]
    assert done["guard"] is None and done["answer"].strip(), done
    return done  # type: ignore[no-any-return]


def wait_for_job(admin: FlaskClient, job_id: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = admin.get(f"/api/training/runs/{job_id}").get_json()
        if job["state"] in ("succeeded", "failed"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout:.0f}s")


def every_row(database: Path) -> str:
    """Every row of every table of an SQLite file (the product's, Celery's, kombu's), as text."""
    engine = create_engine(f"sqlite:///{database}")
    try:
        tables = MetaData()
        tables.reflect(engine)
        with engine.connect() as connection:
            return "\n".join(
                json.dumps([str(v) for v in row])
                for table in tables.sorted_tables
                for row in connection.execute(select(table))
            )
    finally:
        engine.dispose()


def found_in(text: str | bytes, where: str) -> list[str]:
    data = (text.encode("utf-8") if isinstance(text, str) else text).lower()
    return [f"{where}: {v}" for v in NEEDLES if v.lower().encode("utf-8") in data]


def test_no_injected_value_anywhere_after_chats_reviews_a_dataset_and_a_training_run(
    tmp_path: Path, services: Services, dense_cache: Path
) -> None:
    data_dir, web_log = services.settings.data_dir, tmp_path / "web.log"
    app = provisioned_app(services=services)
    app.config.update(TESTING=True)  # CSRF stays on: every post carries its token
    db = services.db
    user_id = create_user(db, "asker@example.org", "asker-password", "user")
    create_user(db, "checker@example.org", "checker-password", "reviewer")

    # The worker starts now, so that its start-up overlaps the chats; its output (Celery's own
    # --loglevel=INFO, through the product's PII filter) goes to data/worker.log.
    env = worker_env(data_dir, dense_cache)
    worker = start_worker(env)
    try:
        with product_logging(web_log):
            token, token_info = tokens.create_token(db, "asker@example.org", "scripts")
            user, reviewer, admin = app.test_client(), app.test_client(), app.test_client()
            user_csrf = sign_in(user, "asker@example.org", "asker-password")
            reviewer_csrf = sign_in(reviewer, "checker@example.org", "checker-password")
            admin_csrf = sign_in(admin, "admin@example.org", "admin-password-1")

            # Two turns of one conversation through the chat page's stream.
            first = ask(user, user_csrf, QUESTIONS[0])
            second = ask(user, user_csrf, QUESTIONS[1], first["conversation_id"])
            clean = ask(user, user_csrf, CLEAN_QUESTION)
            # A program through the OpenAI-compatible API, with an earlier turn as history.
            completion = user.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "messages": [
                        {"role": "user", "content": API_HISTORY},
                        {"role": "assistant", "content": "I am sorry to hear that."},
                        {"role": "user", "content": API_QUESTION},
                    ]
                },
            )
            assert completion.status_code == 200, completion.get_data(as_text=True)
            api = completion.get_json()
            # The model itself read this one (the questions with names are declined first).
            assert api["origin"] == "model" and api["choices"][0]["message"]["content"].strip()

            # Thumbs down on three answers, with personal data in a correction and reasons.
            feedback_ids = {}
            for message_id, body in (
                (first["message_id"], {"correction": CORRECTION, "reason": f"wrong for {FIRST}"}),
                (second["message_id"], {"reason": f"call {PHONE}"}),
                (api["message_id"], {"reason": f"{NEIGHBOUR} says no"}),
            ):
                response = user.post(
                    "/chat/feedback",
                    json={"message_id": message_id, "rating": -1, **body},
                    headers={"X-CSRFToken": user_csrf},
                )
                assert response.status_code == 201, response.get_json()
                feedback_ids[message_id] = response.get_json()["id"]

            # The reviewer accepts the correction, edits one answer and approves one, with
            # personal data in the edit and in the notes.
            queue = reviewer.get("/api/review").get_json()["items"]
            items = {i["message_id"]: i for i in queue}
            assert {first["message_id"], second["message_id"], api["message_id"]} <= set(items)
            assert "<PERSON_1>" in items[first["message_id"]]["question"]
            decisions = (
                (
                    first["message_id"],
                    {
                        "action": "accept_correction",
                        "feedback_id": feedback_ids[first["message_id"]],
                        "note": f"{FIRST} {LAST} is right",
                    },
                ),
                (second["message_id"], {"action": "edit", "edited_answer": EDIT, "note": EMAIL}),
                (api["message_id"], {"action": "approve", "note": f"checked with {CARD}"}),
            )
            for message_id, body in decisions:
                response = reviewer.post(
                    f"/review/{items[message_id]['id']}",
                    json=body,
                    headers={"X-CSRFToken": reviewer_csrf},
                )
                assert response.status_code == 200, response.get_json()
                assert response.get_json()["state"] in ("edited", "approved")

            # The admin builds a dataset, then trains on it; the worker does both.
            response = admin.post(
                "/api/training/datasets", json={}, headers={"X-CSRFToken": admin_csrf}
            )
            assert response.status_code == 202, response.get_json()
            dataset_job = wait_for_job(admin, response.get_json()["job_id"], 300)
            assert dataset_job["state"] == "succeeded", dataset_job
            response = admin.post(
                "/api/training/runs",
                json={"epochs": 1, "batch_size": 2, "max_seq_len": 1024},
                headers={"X-CSRFToken": admin_csrf},
            )
            assert response.status_code == 202, response.get_json()
            training_job = wait_for_job(admin, response.get_json()["job_id"], 900)
    finally:
        worker_log = stop(worker, env)
    assert training_job["state"] == "succeeded", (training_job, worker_log[-4000:])

    # The flow really happened: three examples (one of them the accepted correction, scrubbed),
    # a trained run, a cached answer to the clean question, and both logs tell of it.
    dataset = data_dir / "datasets" / "v0001"
    assert dataset_job["result"]["n_train"] + dataset_job["result"]["n_validation"] == 3
    examples = (dataset / "train.jsonl").read_text() + (dataset / "validation.jsonl").read_text()
    assert "wheezing, coughing" in examples and "<PERSON_1>" in examples
    assert "metformin" in examples and "<US_SSN_1>" in examples  # the reviewer's edit
    run = data_dir / "training" / "runs" / f"job-{training_job['id']}"
    assert training_job["result"]["steps"] > 0 and (run / "adapter").is_dir()
    with db.session() as session:
        cached = session.scalars(select(models.AnswerCacheEntry)).all()
        assert [c.question for c in cached] == ["what causes migraine"]
        assert clean["answer"].startswith(cached[0].answer[:20])
    logged = web_log.read_text()
    for message_id, _body in decisions:
        assert f"review item {items[message_id]['id']}: " in logged
    assert f"API token {token_info.id} created for user {user_id}" in logged
    assert "assistant.build_dataset" in worker_log and "assistant.train" in worker_log
    assert f"ft-job{training_job['id']}" in worker_log  # the candidate is named after its job
    assert f"dataset v1: {dataset_job['result']['n_train']} train" in worker_log

    # The scan: every row of every table (the product's, Celery's results, the broker's queue),
    # the raw bytes of every file in the data folder (databases with their free pages and
    # write-ahead logs, datasets, run folders, adapters, exported models), and both logs.
    found = []
    for database in sorted(data_dir.glob("*.db")):
        found += found_in(every_row(database), f"rows of {database.name}")
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    assert {"assistant.db", "broker.db", "train.jsonl", "adapter_config.json"} <= {
        p.name for p in files
    }
    for path in files:
        found += found_in(path.read_bytes(), str(path.relative_to(data_dir)))
    found += found_in(logged, "web log") + found_in(worker_log, "worker log")
    assert found == []
