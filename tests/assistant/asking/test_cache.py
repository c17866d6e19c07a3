"""The answer cache: keys, the database and Redis stores, and the pipeline's use of them."""

from __future__ import annotations

import pytest

from assistant.asking.cache import CachedAnswer, DatabaseCache, RedisCache, cache_key
from assistant.storage.db import Database

ENTRY = CachedAnswer(
    text="Asthma narrows the airways [1].",
    sources=[
        {
            "n": 1,
            "doc_id": "d1",
            "title": "Asthma",
            "source_url": "",
            "collection": "medical",
            "start": 0,
            "end": 40,
            "score": 0.8,
        },
        {
            "n": 2,
            "doc_id": "d2",
            "title": "COPD",
            "source_url": "",
            "collection": "medical",
            "start": 5,
            "end": 60,
            "score": 0.6,
        },
    ],
    cited=[1],
    retrieval_score=0.8,
)


def test_the_key_ignores_case_spacing_and_trailing_marks_but_not_versions() -> None:
    key = cache_key("What is asthma?", "medical", "v000003", "1:model.gguf")
    assert key == cache_key("  what IS   asthma ?? ", "medical", "v000003", "1:model.gguf")
    assert key != cache_key("What is asthma?", "legal", "v000003", "1:model.gguf")
    assert key != cache_key("What is asthma?", "medical", "v000004", "1:model.gguf")
    assert key != cache_key("What is asthma?", "medical", "v000003", "2:model.gguf")
    assert key != cache_key("What is COPD?", "medical", "v000003", "1:model.gguf")


def _put(cache: DatabaseCache | RedisCache, key: str) -> None:
    cache.put(
        key,
        ENTRY,
        question="what is asthma",
        collection="medical",
        index_version="v1",
        model_version="1:m",
    )


def test_database_cache_round_trip_counts_hits_and_expires(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    db.upgrade()
    cache = DatabaseCache(db, ttl_s=3600)
    assert cache.get("k") is None
    _put(cache, "k")
    _put(cache, "k")  # a second writer of the same answer is a no-op
    assert cache.get("k") == ENTRY
    assert cache.get("k") == ENTRY
    from sqlalchemy import select

    from assistant.storage.models import AnswerCacheEntry

    with db.session() as session:
        row = session.scalars(select(AnswerCacheEntry)).one()
        assert row.hits == 2 and row.last_hit_at is not None
    expired = DatabaseCache(db, ttl_s=1)
    with db.session() as session:
        row = session.scalars(select(AnswerCacheEntry)).one()
        row.created_at = row.created_at.replace(year=2000)
    assert expired.get("k") is None
    db.dispose()


@pytest.mark.redis
def test_redis_cache_round_trip(redis_url: str) -> None:
    cache = RedisCache(redis_url, ttl_s=60, prefix="test:answer:")
    cache._redis.delete("test:answer:k")
    assert cache.get("k") is None
    _put(cache, "k")
    assert cache.get("k") == ENTRY
    assert 0 < cache._redis.ttl("test:answer:k") <= 60
    cache._redis.delete("test:answer:k")


@pytest.mark.redis
def test_redis_cache_forgets_a_question_in_every_collection(redis_url: str) -> None:
    cache = RedisCache(redis_url, ttl_s=60, prefix="test:forget:")
    for key in cache._redis.scan_iter("test:forget:*"):
        cache._redis.delete(key)
    for key, question in (("a", "what is asthma"), ("b", "what is asthma"), ("c", "what is copd")):
        cache.put(
            key, ENTRY, question=question, collection=key, index_version="v", model_version="m"
        )
    assert cache.forget(["What is ASTHMA?"]) == 2
    assert cache.get("a") is None and cache.get("b") is None and cache.get("c") == ENTRY
    assert cache.forget(["What is asthma?"]) == 0
    for key in cache._redis.scan_iter("test:forget:*"):
        cache._redis.delete(key)


@pytest.mark.slow
def test_a_cached_answer_is_served_without_the_model(indexed_services) -> None:
    pipeline = indexed_services.pipeline
    assert pipeline.cached is not None
    question = "What is a cached question about asthma?"
    with pipeline.llm.use() as lease:
        key = pipeline.cached.key(question, None, lease)
        version = lease.version_id
    indexed_services.answer_cache.put(
        key,
        ENTRY,
        question=question,
        collection=None,
        index_version="x",
        model_version="x",
    )
    events = list(pipeline.stream(question.upper() + "  "))
    answer = events[-1].data
    assert [e.kind for e in events] == ["sources", "token", "done"]
    assert answer.text == ENTRY.text and answer.timings["cache_hit"] == 1.0
    assert [c.doc_id for c in answer.citations] == ["d1"]
    assert [c.doc_id for c in answer.sources] == ["d1", "d2"]
    assert answer.model_version_id == version
    # Another collection (or index or model version) is another key: a miss.
    with pipeline.llm.use() as lease:
        assert pipeline.cached.get(pipeline.cached.key(question, "legal", lease)) is None
    metrics = indexed_services.metrics.render().decode()
    assert 'assistant_answer_cache_lookups_total{result="hit"} 1.0' in metrics


def test_entries_of_old_versions_are_purged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    db.upgrade()
    cache = DatabaseCache(db, ttl_s=3600)
    versions = dict(question="q", collection=None)
    cache.put("old", ENTRY, index_version="v1", model_version="1:m", **versions)
    cache.put("new", ENTRY, index_version="v2", model_version="1:m", **versions)
    assert cache.get("old") is not None
    cache._next_purge = cache._next_purge.replace(year=2000)  # due now
    cache.put("newer", ENTRY, index_version="v2", model_version="1:m", **versions)
    assert cache.get("old") is None and cache.get("new") is not None
    db.dispose()
