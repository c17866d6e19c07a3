"""The answer cache: the same question, collection, index and model give the stored answer.

The key holds the index version and the model version, so a re-ingest or a model switch
invalidates every entry without any deletion. Only clean answers are cached (no flag), and
never those to questions with personal data in them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select

from assistant.storage import models
from assistant.storage.db import Database

logger = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?.!]+$")


def normalise_for_cache(question: str) -> str:
    """Case, spacing and trailing punctuation do not make a different question."""
    return _TRAILING.sub("", _SPACE.sub(" ", question.casefold())).strip()


def cache_key(question: str, collection: str | None, index_version: str, model_version: str) -> str:
    parts = [normalise_for_cache(question), collection or "*", index_version, model_version]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    text: str
    sources: list[dict[str, Any]]  # citation dicts of every source given, in order
    cited: list[int]  # the source numbers the answer cites
    retrieval_score: float | None


class AnswerCache(Protocol):
    def get(self, key: str) -> CachedAnswer | None: ...

    def put(
        self,
        key: str,
        answer: CachedAnswer,
        *,
        question: str,
        collection: str | None,
        index_version: str,
        model_version: str,
    ) -> None: ...

    def forget(self, questions: Sequence[str]) -> int:
        """Delete the entries of these questions (any collection, any version); how many."""
        ...


class DatabaseCache:
    """Entries in the ``answer_cache`` table (the default: no server needed)."""

    # Entries of other index or model versions are never read again: they are deleted, with
    # the expired ones, at most this often (by the process that writes).
    PURGE_EVERY = timedelta(minutes=10)

    def __init__(self, db: Database, ttl_s: int) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)
        self._next_purge = models.utcnow()

    def purge(self, index_version: str, model_version: str) -> int:
        """Delete entries of other versions and expired ones; how many went."""
        from sqlalchemy import delete, or_

        cutoff = models.utcnow() - self.ttl
        with self.db.session() as session:
            result = session.execute(
                delete(models.AnswerCacheEntry).where(
                    or_(
                        models.AnswerCacheEntry.index_version != index_version,
                        models.AnswerCacheEntry.model_version != model_version,
                        models.AnswerCacheEntry.created_at < cutoff,
                    )
                )
            )
            # execute() is typed Result; a DELETE returns a CursorResult
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def forget(self, questions: Sequence[str]) -> int:
        from sqlalchemy import delete

        wanted = sorted({normalise_for_cache(q) for q in questions})
        removed = 0
        with self.db.session() as session:
            for start in range(0, len(wanted), 500):  # bound the size of one IN list
                result = session.execute(
                    delete(models.AnswerCacheEntry).where(
                        models.AnswerCacheEntry.question.in_(wanted[start : start + 500])
                    )
                )
                # execute() is typed Result; a DELETE returns a CursorResult
                removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return removed

    def get(self, key: str) -> CachedAnswer | None:
        with self.db.session() as session:
            row = session.scalars(
                select(models.AnswerCacheEntry).where(models.AnswerCacheEntry.cache_key == key)
            ).first()
            if row is None:
                return None
            now = models.utcnow()
            created = row.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=now.tzinfo)
            if now - created > self.ttl:
                session.delete(row)
                return None
            row.hits += 1
            row.last_hit_at = now
            sources = [s for s in row.citations or [] if isinstance(s, dict)]
            return CachedAnswer(
                text=row.answer,
                sources=[{k: v for k, v in s.items() if k != "cited"} for s in sources],
                cited=[int(s["n"]) for s in sources if s.get("cited")],
                retrieval_score=_best_score(sources),
            )

    def put(
        self,
        key: str,
        answer: CachedAnswer,
        *,
        question: str,
        collection: str | None,
        index_version: str,
        model_version: str,
    ) -> None:
        now = models.utcnow()
        if now >= self._next_purge:
            self._next_purge = now + self.PURGE_EVERY
            self.purge(index_version, model_version)
        cited = set(answer.cited)
        sources = [{**s, "cited": s.get("n") in cited} for s in answer.sources]
        with self.db.session() as session:
            exists = session.scalars(
                select(models.AnswerCacheEntry.id).where(models.AnswerCacheEntry.cache_key == key)
            ).first()
            if exists is not None:
                return
            session.add(
                models.AnswerCacheEntry(
                    cache_key=key,
                    question=question[:4000],
                    collection=collection,
                    index_version=index_version,
                    model_version=model_version,
                    answer=answer.text,
                    citations=sources,
                    flags=[],
                )
            )


class RedisCache:
    """Entries in Redis with a time to live (shared by every process and machine)."""

    def __init__(self, url: str, ttl_s: int, prefix: str = "assistant:answer:") -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2)
        self.ttl_s = ttl_s
        self.prefix = prefix

    def get(self, key: str) -> CachedAnswer | None:
        raw = self._redis.get(self.prefix + key)
        if raw is None:
            return None
        return CachedAnswer(**json.loads(raw))

    def put(
        self,
        key: str,
        answer: CachedAnswer,
        *,
        question: str,
        collection: str | None,
        index_version: str,
        model_version: str,
    ) -> None:
        entry = self.prefix + key
        by_question = self._question_set(question)
        pipe = self._redis.pipeline()
        pipe.set(entry, json.dumps(asdict(answer)), ex=self.ttl_s, nx=True)
        # The keys of each question, so that a removed account's answers can be found.
        pipe.sadd(by_question, entry)
        pipe.expire(by_question, self.ttl_s)
        pipe.execute()

    def forget(self, questions: Sequence[str]) -> int:
        removed = 0
        for question in {normalise_for_cache(q) for q in questions}:
            by_question = self._question_set(question)
            entries = list(self._redis.smembers(by_question))
            if entries:
                removed += int(self._redis.delete(*entries))
            self._redis.delete(by_question)
        return removed

    def _question_set(self, question: str) -> str:
        digest = hashlib.sha256(normalise_for_cache(question).encode("utf-8")).hexdigest()
        return f"{self.prefix}question:{digest}"


def _best_score(sources: list[Any]) -> float | None:
    scores = [float(s["score"]) for s in sources if isinstance(s, dict) and "score" in s]
    return max(scores) if scores else None
