"""Shared fixtures: real models loaded once per session, a small real index built once.

Nothing here is a mock: the index is FAISS + BM25 over real MedQuAD and CUAD documents,
the embedder is all-MiniLM-L6-v2, the LLM is SmolLM2 in llama.cpp, the PII engine is
Presidio with spaCy.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Model files derived from the base (its Q8_0 copy, the shipped adapter merged into it) are
# made once for the whole run, not once per test's data folder.
os.environ.setdefault(
    "ASSISTANT_LLM__QUANTIZED_DIR",
    str(Path(__file__).resolve().parent.parent / "test-artifacts" / "models"),
)

from assistant.services import Services  # noqa: E402
from assistant.settings import PROJECT_ROOT, Settings  # noqa: E402
from retrieval.loaders import record_aliases  # noqa: E402
from retrieval.types import Document  # noqa: E402

TESTS_DATA = Path(__file__).parent / "data"
CORPUS = PROJECT_ROOT / "data" / "corpus"
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def fixture_documents() -> list[Document]:
    """30 MedQuAD pages (diabetes, asthma, leukemia, ...) and the start of one CUAD contract."""
    wanted = set(json.loads((TESTS_DATA / "fixture_doc_ids.json").read_text()))
    documents = []
    with (CORPUS / "medical" / "medquad_docs.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["id"] in wanted:
                documents.append(
                    Document(
                        record["id"],
                        record["title"],
                        record["text"],
                        "medical",
                        record["source_url"],
                        aliases=record_aliases(record),
                    )
                )
    with (CORPUS / "legal" / "cuad_docs.jsonl").open(encoding="utf-8") as handle:
        record = json.loads(handle.readline())
        documents.append(
            Document(
                record["id"], record["title"], record["text"][:12000], "legal", record["source_url"]
            )
        )
    return documents


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory: pytest.TempPathFactory) -> Services:
    """A Services whose embedder, LLM and PII engine other fixtures reuse (loaded once)."""
    services = Services(make_settings(tmp_path_factory.mktemp("models")))
    _ = services.embedder, services.scrubber
    return services


def services_with_shared_models(settings: Settings, shared: Services) -> Services:
    parts = {"embedder": shared.embedder, "scrubber": shared.scrubber}
    if shared.loaded("llm"):  # otherwise loaded by whichever Services first needs it
        parts["llm"] = shared.llm
    return Services(settings, parts)


@pytest.fixture(scope="session")
def indexed_services(tmp_path_factory: pytest.TempPathFactory, shared_models: Services) -> Services:
    """Services over a fresh SQLite database and a small real index, built once."""
    from assistant.corpus.ingest import ingest_documents

    services = services_with_shared_models(
        make_settings(tmp_path_factory.mktemp("indexed")), shared_models
    )
    services.db.upgrade()
    ingest_documents(services, fixture_documents())
    return services


@pytest.fixture()
def fresh_services(tmp_path: Path, shared_models: Services) -> Iterator[Services]:
    """Services on an empty database and index in a temporary folder."""
    services = services_with_shared_models(make_settings(tmp_path / "var"), shared_models)
    services.db.upgrade()
    yield services
    services.close()


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=2
        ):
            return True
    except Exception:
        return False


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except Exception:
        return False


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 in CI")
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import psycopg

    name = f"assistant_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rabbitmq_available() -> bool:
    try:
        from kombu import Connection

        with Connection(RABBITMQ_URL, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
            return True
    except Exception:
        return False


@pytest.fixture()
def rabbitmq_url() -> str:
    # Not required in CI: the production configuration the issue fixes is PostgreSQL + Redis.
    if not rabbitmq_available():
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")
    return RABBITMQ_URL


@pytest.fixture()
def redis_url() -> str:
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 in CI")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return REDIS_URL
