"""Retrieval benchmark: ingestion throughput against raw sentence-transformers, query latency.

    python benchmarks/retrieval.py [--docs 200] [--index-dir var/index] [--json]

1. Ingestion: the product ingests ``--docs`` MedQuAD pages (clean, chunk, embed, FAISS + BM25,
   write a version) in a temporary folder; the same passage texts are then encoded by raw
   ``SentenceTransformer.encode`` (torch, batch 32). Ratio = product passages/s / raw passages/s.
2. Query latency p50/p95 (embedding included) over the default corpus index, when one exists
   at ``--index-dir``, and over a synthetic 100,000-passage index (the corpus passages
   repeated as new documents, vectors jittered), with the product's hybrid search and, in the
   same loop, the raw libraries (torch encode + FAISS + bm25s + RRF) on the same index files.
The last line printed with --json is one JSON object of all figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.infra.logging_setup import configure_logging  # noqa: E402
from assistant.services import Services  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from retrieval.chunking import embedding_text  # noqa: E402
from retrieval.types import Document  # noqa: E402

QUESTIONS = [
    "What are the symptoms of type 2 diabetes?",
    "How is asthma treated in children?",
    "Who can terminate the agreement and with how much notice?",
    "What causes glaucoma?",
    "Is there a non-compete clause?",
    "What are the side effects of chemotherapy for leukemia?",
    "Which law governs this contract?",
    "How can I prevent osteoporosis?",
]


def load_docs(limit: int) -> list[Document]:
    documents = []
    with (ROOT / "data/corpus/medical/medquad_docs.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            documents.append(
                Document(
                    record["id"], record["title"], record["text"], "medical", record["source_url"]
                )
            )
            if len(documents) >= limit:
                break
    return documents


def bench_ingestion(limit: int) -> dict[str, float]:
    from sentence_transformers import SentenceTransformer

    from assistant.corpus.ingest import ingest_documents

    documents = load_docs(limit)
    with tempfile.TemporaryDirectory() as folder:
        services = Services(Settings(data_dir=Path(folder)))
        services.db.upgrade()
        _ = services.embedder  # model load (and the one-time ONNX export) is not ingestion
        started = time.perf_counter()
        report = ingest_documents(services, documents)
        product_seconds = time.perf_counter() - started
        texts = [embedding_text(c) for c in services.index.current().chunks]
        backend = services.embedder.backend
    raw = SentenceTransformer(str(Settings().retrieval.embedding_model), device="cpu")
    raw.encode(texts[:32], batch_size=32)  # warm-up
    started = time.perf_counter()
    raw.encode(texts, batch_size=32, normalize_embeddings=True)
    raw_seconds = time.perf_counter() - started
    product_rate = report.chunks_added / product_seconds
    raw_rate = len(texts) / raw_seconds
    return {
        "ingest_documents": len(documents),
        "ingest_passages": report.chunks_added,
        "ingest_backend": backend,
        "ingest_passages_per_s": round(product_rate, 1),
        "raw_encode_passages_per_s": round(raw_rate, 1),
        "ingest_vs_raw_encode_ratio": round(product_rate / raw_rate, 3),
    }


def dev_questions(limit: int) -> list[str]:
    """Questions from both dev sets beside the repository (else the fixed list), mixed."""
    shared = ROOT.parent / "shared" / "data"
    files = [shared / "medical/medquad_qa_dev.jsonl", shared / "legal/cuad_qa_dev.jsonl"]
    if not all(f.exists() for f in files):
        return QUESTIONS
    per_file = []
    for path in files:
        with path.open() as handle:
            per_file.append([json.loads(line)["question"] for line in handle][::7][: limit // 2])
    return [q for pair in zip(*per_file, strict=False) for q in pair]


def percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


def latencies(services: Services, questions: list[str], raw_model: object) -> dict[str, object]:
    """Product search against the raw libraries, question by question in the same loop.

    product: ``IndexStore.search`` (query encoding + hybrid search + fusion);
    encode: the product's query encoding alone; search: the rest;
    raw: the tutorial pipeline on the same index files: torch ``SentenceTransformer.encode``,
    FAISS ``search`` top 100, ``bm25s`` ``retrieve`` top 100, reciprocal rank fusion.
    """
    import bm25s

    from retrieval.search import _english_stemmer, rrf_fuse

    index = services.index
    version = index.current()
    params = services.settings.retrieval.search_params()
    index.search(questions[0], 5)  # load and warm up
    runs: dict[str, list[float]] = {"product": [], "encode": [], "search": [], "raw": []}
    for question in questions:
        started = time.perf_counter()
        index.search(question, 5)
        runs["product"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        vector = services.embedder.encode_query(question)
        runs["encode"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        version.searcher.search(question, vector, 5, params=params)
        runs["search"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        raw_vector = raw_model.encode([question], normalize_embeddings=True)  # type: ignore[attr-defined]
        _, dense_ids = version.dense.search(raw_vector, 100)
        tokens = bm25s.tokenize(
            [question], stopwords="en", stemmer=_english_stemmer(), show_progress=False
        )
        bm25_ids, _ = version.searcher.bm25.retrieve(
            tokens, k=100, show_progress=False, n_threads=1
        )
        rrf_fuse([(dense_ids[0].tolist(), 1.0), (bm25_ids[0].tolist(), 1.0)], 60)[:5]
        runs["raw"].append((time.perf_counter() - started) * 1000)
    figures: dict[str, object] = {name: percentiles(times) for name, times in runs.items()}
    figures["questions"] = len(questions)
    figures["product_vs_raw_p50"] = round(
        statistics.median(runs["product"]) / statistics.median(runs["raw"]), 3
    )
    return figures


def bench_corpus_queries(
    index_dir: Path, questions: list[str], raw_model: object
) -> dict[str, object] | None:
    if not (index_dir / "CURRENT").exists():
        return None
    services = Services(Settings(data_dir=index_dir.parent))
    figures = latencies(services, questions, raw_model)
    figures["passages"] = services.index.current().manifest.n_chunks
    return figures


def bench_synthetic_queries(
    index_dir: Path, size: int, questions: list[str], raw_model: object
) -> dict[str, object] | None:
    if not (index_dir / "CURRENT").exists():
        return None
    source = Services(Settings(data_dir=index_dir.parent)).index.current()
    rng = np.random.default_rng(0)
    repeats = -(-size // len(source.chunks))
    # Copies get their own document ids, so that documents keep their usual size.
    chunks = [replace(c, doc_id=f"{c.doc_id}#{r}") for r in range(repeats) for c in source.chunks][
        :size
    ]
    vectors = np.tile(np.asarray(source.vectors), (repeats, 1))[:size]
    vectors = vectors + rng.normal(0, 0.01, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as folder:
        services = Services(Settings(data_dir=Path(folder)))
        started = time.perf_counter()
        services.index.write_version(None, chunks, vectors, n_documents=0)
        build_seconds = time.perf_counter() - started
        figures = latencies(services, questions, raw_model)
    figures["passages"] = size
    figures["build_s"] = round(build_seconds, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--index-dir", type=Path, default=ROOT / "var" / "index")
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--skip-ingest", action="store_true", help="Query latency only.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING")
    from sentence_transformers import SentenceTransformer

    figures: dict[str, object] = {}
    if not args.skip_ingest:
        figures.update(bench_ingestion(args.docs))
    raw_model = SentenceTransformer(str(Settings().retrieval.embedding_model), device="cpu")
    questions = dev_questions(args.questions)
    figures["corpus_query"] = bench_corpus_queries(args.index_dir, questions, raw_model)
    figures["synthetic_query"] = bench_synthetic_queries(
        args.index_dir, args.synthetic, questions, raw_model
    )
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
