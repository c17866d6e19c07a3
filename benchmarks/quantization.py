"""Which quantization to serve: prompt reading and decoding speed in raw llama.cpp.

The shipped GGUF (Q4_1) and its re-quantized copies (the `llm.requantize` choices), each
loaded with the product's threads, read the same corpus prompt (``--prompt-tokens``) from
an empty context and then decode ``--decode-tokens`` greedily; median of ``--repeats``.
A RAG turn is mostly prompt (hundreds of tokens read, tens written), so prompt reading
decides the time to first token.

    python benchmarks/quantization.py [--prompt-tokens 600] [--json]

The last line with --json is one JSON object: per quantization, tokens/s and the ratio to
the shipped file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "data" / "corpus" / "medical" / "medquad_docs.jsonl"


def speeds(path: Path, threads: int, prompt: str, n_prompt: int, n_decode: int, repeats: int):  # type: ignore[no-untyped-def]
    from llama_cpp import Llama

    llama = Llama(
        model_path=str(path),
        n_ctx=n_prompt + n_decode + 64,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    try:
        tokens = llama.tokenize(prompt.encode())[:n_prompt]
        reading, writing = [], []
        for _ in range(repeats):
            llama.reset()
            started = time.perf_counter()
            llama.eval(tokens)
            reading.append(len(tokens) / (time.perf_counter() - started))
            started = time.perf_counter()
            for _ in range(n_decode):
                token = llama.sample(temp=0.0)
                llama.eval([token])
            writing.append(n_decode / (time.perf_counter() - started))
        return statistics.median(reading), statistics.median(writing), len(tokens)
    finally:
        llama.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompt-tokens", type=int, default=600)
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quantizations", default="Q4_K_M,Q5_K_M,Q8_0")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from assistant.llm.local import requantized
    from assistant.settings import Settings

    settings = Settings()
    shipped = Path(settings.llm.model_path)
    prompt = CORPUS.read_text(encoding="utf-8")[: args.prompt_tokens * 8]
    figures: dict[str, Any] = {"threads": settings.llm.n_threads}
    with tempfile.TemporaryDirectory() as folder:
        files = {"shipped": shipped}
        for quantization in args.quantizations.split(","):
            files[quantization] = requantized(
                shipped, quantization, Path(folder), settings.llm.n_threads
            )
        base: tuple[float, float] | None = None
        for name, path in files.items():
            read, write, n = speeds(
                path,
                settings.llm.n_threads,
                prompt,
                args.prompt_tokens,
                args.decode_tokens,
                args.repeats,
            )
            base = base or (read, write)
            figures[name] = {
                "file_mb": round(path.stat().st_size / 1e6, 1),
                "prompt_tokens": n,
                "prompt_tokens_per_s": round(read, 1),
                "decode_tokens_per_s": round(write, 1),
                "prompt_speed_ratio": round(read / base[0], 3),
                "decode_speed_ratio": round(write / base[1], 3),
            }
            print(f"{name:8s} {json.dumps(figures[name])}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
