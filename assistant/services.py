"""Builds the product's services from Settings, by hand: the web app and the worker each call it.

Heavy parts (embedding model, index, LLM, PII engine) load on first use, so that the CLI and
the web server start fast and a worker child loads only what its tasks need.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.settings import Settings
from assistant.storage.db import Database

if TYPE_CHECKING:
    from assistant.artifacts.sharing import ArtifactFollower, ArtifactSharing
    from assistant.asking.cache import AnswerCache
    from assistant.asking.chat import ChatService
    from assistant.asking.conversation_pii import ConversationScrubber
    from assistant.asking.history import ConversationHistory
    from assistant.asking.pipeline import AnswerPipeline
    from assistant.infra.metrics import ServingMetrics
    from assistant.llm import ServingLLM
    from assistant.llm.registry import ModelVersionInfo
    from assistant.review.feedback import FeedbackService
    from retrieval.embedding import Embedder
    from retrieval.store import IndexStore
    from safety.guards import InputGuard
    from safety.pii import PIIScrubber, PIISpan

logger = logging.getLogger(__name__)

T = TypeVar("T")


def lazy_part(build: Callable[[Services], T]) -> property:
    """A property built once per Services, even when two request threads ask at once."""
    name = build.__name__

    def get(self: Services) -> T:
        part = self._parts.get(name)
        if part is None:
            with self._lock:
                part = self._parts.get(name)
                if part is None:
                    part = build(self)
                    self._parts[name] = part
                    self._built.add(name)
        return part

    get.lazy_part = True  # type: ignore[attr-defined]  # marks it for Services.part_names
    return property(get, doc=build.__doc__)


class Services:
    """The wired product. One per process; thread-safe lazy loading."""

    def __init__(self, settings: Settings, parts: Mapping[str, Any] | None = None) -> None:
        """``parts``: parts built elsewhere, used as they are (e.g. one loaded model shared
        by several Services in a process); this Services never closes them."""
        self.settings = settings
        private_folder(settings.data_dir)
        self.db = Database(settings.database.url, settings.database.echo)
        self._lock = threading.RLock()
        unknown = set(parts or {}) - set(self.part_names())
        if unknown:
            raise ValueError(f"not parts of Services: {', '.join(sorted(unknown))}")
        self._parts: dict[str, Any] = dict(parts or {})
        self._built: set[str] = set()  # parts this Services made (and so may close)

    @classmethod
    def part_names(cls) -> list[str]:
        """The lazily built parts (each a ``lazy_part`` property)."""
        return [
            name
            for name, value in vars(cls).items()
            if isinstance(value, property) and getattr(value.fget, "lazy_part", False)
        ]

    def loaded(self, name: str) -> bool:
        """Whether a lazy part has been built (the health page reports it)."""
        return name in self._parts

    @lazy_part
    def embedder(self) -> Embedder:
        from retrieval.embedding import load_embedder

        retrieval = self.settings.retrieval
        return load_embedder(
            retrieval.embedding_model,
            retrieval.embedding_backend,
            batch_size=retrieval.embedding_batch_size,
            cache_dir=self.settings.data_dir / "models",
            threads=self.settings.llm.n_threads,
        )

    @lazy_part
    def index(self) -> IndexStore:
        from retrieval.answer_types import AnswerTypes
        from retrieval.store import IndexStore

        retrieval = self.settings.retrieval
        types = AnswerTypes.load(retrieval.answer_types) if retrieval.answer_types else None
        return IndexStore(self.settings.index_dir, self.embedder, retrieval.search_params(), types)

    @lazy_part
    def artifacts(self) -> ArtifactSharing:
        """Index versions and model files shared with the other hosts (when a store is set)."""
        from assistant.artifacts.sharing import ArtifactSharing

        return ArtifactSharing(self.settings, self.db)

    def follow_artifacts(self) -> ArtifactFollower | None:
        """Keep this host on the shared index and model: one round now (a new host starts
        on the current versions), then a daemon thread every ``artifacts.poll_s``."""
        from assistant.artifacts.sharing import ArtifactFollower

        if not self.settings.artifacts.enabled:
            return None
        follower = ArtifactFollower(self.artifacts, self.index, self.settings.artifacts.poll_s)
        follower.sync_once()
        follower.start()
        return follower

    def queue_limit(self) -> int:
        """Requests that may wait for the model. In the web server each holds one of its
        threads while it waits (and one more generates): past ``web.reserved_threads`` they
        would leave none for sign-in, pages and the health check (16 streaming clients once
        kept /login from answering for 10 s), so more are refused at once instead."""
        web = self.settings.web
        generating = self.generating_at_once()
        return max(
            0, min(self.settings.llm.queue_size, web.threads - generating - web.reserved_threads)
        )

    def generating_at_once(self) -> int:
        """Answers the model decodes together: the server's slots in the batched mode, the
        requests sent at once to a remote server (which batches them) in the remote mode."""
        llm = self.settings.llm
        return llm.parallel if llm.backend in ("batched", "remote") else 1

    @lazy_part
    def llm(self) -> ServingLLM:
        """The model the registry says is active, followed as it changes (hot swap)."""
        from sqlalchemy.exc import SQLAlchemyError

        from assistant.llm import Scheduler, ServingLLM, load_backend, registry

        try:
            self.prepare_registry()
        except SQLAlchemyError:
            logger.warning("no model registry (run `assistant init-db`): serving the model file")

        def active() -> registry.ModelVersionInfo | None:
            try:
                return registry.active_version(self.db)
            except SQLAlchemyError:
                return None

        metrics = self.metrics
        llm = self.settings.llm
        # One queue for every model version this process loads: they share its cores, so the
        # queue's limits are the process's, and during a switch the new version waits its
        # turn instead of generating beside the old one while the old drains its queue (two
        # llama.cpp teams on the same cores). The 16-client load with a switch measured the
        # same either way (0.948 vs 0.952 of the raw rate; benchmarks/RESULTS.md).
        # In the batched mode the versions' servers share the cores too: ``parallel`` slots
        # in all, whichever server they are on.
        queue = Scheduler(
            self.queue_limit(),
            llm.queue_timeout_s,
            llm.retry_after_s,
            metrics.queue_wait.observe,
            capacity=self.generating_at_once(),
        )
        serving = ServingLLM(
            lambda version: load_backend(
                self.settings, version, scheduler=queue, model_file=self.artifacts.model_file
            ),
            active,
            llm.version_check_s,
        )
        metrics.queue_depth.set_function(lambda: serving.waiting)
        return serving

    def prepare_registry(self) -> None:
        """There is always an active version (the configured file, the first time); the
        shipped model is merged and registered; what this host registered is shared."""
        from assistant.llm import registry

        registry.ensure_base_version(self.db, self.settings.llm.model_path)
        self.ensure_shipped_model()
        self.artifacts.publish_local_models()

    def model_file(self, version: ModelVersionInfo) -> Path:
        """The file this host serves for ``version``: fetched from the artifact store when
        another host made it; a base model re-quantized as configured."""
        from assistant.llm import served_file

        return served_file(self.settings, version, self.artifacts.model_file)

    def ensure_shipped_model(self) -> None:
        """The shipped grounded model merged, registered and (the first time) active."""
        from assistant.llm.default_model import ensure_default_model

        llm = self.settings.llm
        ensure_default_model(
            self.db,
            llm.model_path,
            llm.shipped_adapter,
            llm.quantized_dir or self.settings.data_dir / "models",
            llm.n_threads,
        )

    @lazy_part
    def metrics(self) -> ServingMetrics:
        from assistant.infra.metrics import ServingMetrics

        return ServingMetrics()

    @lazy_part
    def answer_cache(self) -> AnswerCache | None:
        from assistant.asking.cache import DatabaseCache, RedisCache

        serving = self.settings.serving
        if serving.cache == "db":
            return DatabaseCache(self.db, serving.cache_ttl_s)
        if serving.cache == "redis":
            url = serving.cache_redis_url or self.settings.broker.url
            return RedisCache(url, serving.cache_ttl_s)
        return None

    @lazy_part
    def scrubber(self) -> PIIScrubber:
        from assistant.infra.logging_setup import use_scrubber
        from safety.pii import PIIScrubber

        scrubber = PIIScrubber(self.settings.safety)
        # Log lines are scrubbed with the full engine from now on (fast patterns before).
        use_scrubber(scrubber.redact)
        return scrubber

    @lazy_part
    def pipeline(self) -> AnswerPipeline:
        from assistant.asking.pipeline import AnswerPipeline

        return AnswerPipeline(
            self.settings,
            self.index,
            self.llm,
            detect_pii=self.detect_pii,
            cache=self.answer_cache,
            metrics=self.metrics,
            embedder=self.embedder,
            instruction_check=self.input_guard.instructions,
        )

    def detect_pii(self, text: str) -> list[PIISpan]:
        """The personal data in ``text`` (loads the PII engine on first use)."""
        return self.scrubber.detect(text)

    @lazy_part
    def input_guard(self) -> InputGuard:
        from safety.guards import InputGuard, emergency_message

        safety = self.settings.safety
        semantic = None
        if safety.semantic_guard:
            if safety.intent_model.is_file():
                from safety.intent import IntentModel, SemanticGuard

                embedder = self.embedder
                semantic = SemanticGuard(
                    IntentModel.load(safety.intent_model),
                    embedder.encode,
                    embedder.common_words(),
                )
            else:
                logger.warning("no intent model at %s: patterns only", safety.intent_model)
        return InputGuard(
            safety.injection_threshold,
            safety.scope_check,
            semantic,
            emergency_message(safety.emergency_number, safety.crisis_line, safety.poison_line),
        )

    @lazy_part
    def conversation_pii(self) -> ConversationScrubber:
        from assistant.asking.conversation_pii import ConversationScrubber

        return ConversationScrubber(lambda: self.scrubber, self.settings.safety.hash_key_file)

    @lazy_part
    def chat(self) -> ChatService:
        from assistant.asking.chat import ChatService

        return ChatService(
            self.settings,
            self.db,
            self.conversation_pii,
            guard=lambda: self.input_guard,
            pipeline=lambda: self.pipeline,
            loaded_llm=lambda: self.llm if self.loaded("llm") else None,
            metrics=self.metrics,
        )

    @lazy_part
    def history(self) -> ConversationHistory:
        from assistant.asking.history import ConversationHistory

        return ConversationHistory(self.db)

    @lazy_part
    def feedback(self) -> FeedbackService:
        from assistant.review.feedback import FeedbackService

        thumbs_down = self.settings.safety.flag_rules.thumbs_down
        return FeedbackService(self.db, self.conversation_pii, thumbs_down)

    def close(self) -> None:
        if "llm" in self._built:
            self._parts["llm"].close()
        self.db.dispose()


def private_folder(path: Path) -> None:
    """The data folder, readable by its owner only: it holds the database (with keyed digests
    of personal data), the key files and the model files; a copy of it must not be readable
    by other accounts of the machine."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError:  # a folder owned by another account: its owner decides
        logger.warning("could not make %s private to its owner", path)


def build_services(settings: Settings | None = None) -> Services:
    return Services(settings or Settings())
