"""Log handlers, set once at process start (modules only call logging.getLogger)."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Libraries that are chatty at INFO, or that try the network and log tracebacks offline.
    for name in (
        "sentence_transformers",
        "httpx",
        "urllib3",
        "tldextract",
        "presidio-analyzer",
        "faiss.loader",
        "bm25s",
        "alembic",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    # Presidio warns once per recognizer of a language we do not load (es, it, pl).
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
