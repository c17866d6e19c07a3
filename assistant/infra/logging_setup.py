"""Log handlers, set once at process start (modules only call logging.getLogger)."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable

# Personal data a log line must never carry, caught without the NER model: e-mails, long digit
# runs in any layout (phones, cards, SSNs, record numbers), IBANs, IP addresses.
_FAST_PATTERNS = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<EMAIL_ADDRESS>"),
    (re.compile(r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b", re.IGNORECASE), "<IBAN_CODE>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<IP_ADDRESS>"),
    (re.compile(r"(?<![\w-])\+?\(?\d[\d().\s-]{5,}\d\b"), "<NUMBER>"),
)


def fast_scrub(text: str) -> str:
    """Patterns only: what is scrubbed when the PII engine is not loaded (or is busy)."""
    for pattern, replacement in _FAST_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class PIILogFilter(logging.Filter):
    """Scrubs every record before any handler writes it: message, arguments and traceback.

    The full scrubber (names, addresses, ...) is used once the process has loaded it, and the
    fast patterns always; a failure while scrubbing drops the text, never lets it through.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scrub: Callable[[str], str] | None = None
        self._busy = threading.local()

    def _clean(self, text: str) -> str:
        if self.scrub is not None and not getattr(self._busy, "on", False):
            # Presidio may log while it scrubs: that record gets the fast patterns only.
            self._busy.on = True
            try:
                text = self.scrub(text)
            except Exception:
                return "<log text dropped: PII scrubbing failed>"
            finally:
                self._busy.on = False
        return fast_scrub(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg = self._clean(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


# The one filter of this process, on every root handler (set up at process start).
PII_FILTER = PIILogFilter()


# Loggers that servers and workers give handlers of their own (gunicorn, Celery): a filter on
# the root handlers never sees their records.
OWN_HANDLER_LOGGERS = ("gunicorn.error", "gunicorn.access", "celery", "celery.task")


def install_pii_filter(handler: logging.Handler | None = None) -> None:
    """Put the PII filter on ``handler``, or on every handler of the root logger and of the
    loggers that servers and workers set up themselves."""
    if handler is not None:
        handlers = [handler]
    else:
        handlers = list(logging.getLogger().handlers)
        for name in OWN_HANDLER_LOGGERS:
            handlers += logging.getLogger(name).handlers
    for h in handlers:
        if PII_FILTER not in h.filters:
            h.addFilter(PII_FILTER)


def install_on_logger(logger: logging.Logger | None = None, **_: object) -> None:
    """A signal handler (Celery's after_setup_logger): the filter on that logger's handlers."""
    for h in logger.handlers if logger is not None else []:
        install_pii_filter(h)
    install_pii_filter()


def use_scrubber(scrub: Callable[[str], str] | None) -> None:
    """From now on log records are also scrubbed with ``scrub`` (the loaded PII engine)."""
    PII_FILTER.scrub = scrub


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_pii_filter()
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
