"""No recognizer pattern is super-linear: adversarial repeats of every separator, at two
sizes; quadratic work would take 16 times as long for 4 times the text."""

from __future__ import annotations

import time

import pytest

import safety.recognizers as recognizers

UNITS = [
    "a.", "a ", "A, ", "1 a ", "A. ", "a-", "1-", "1.", "1 ", "Aa ", "a'", "a\n", "A\n",
    "@a.", "a@", "http://a.", ":/", ".com ", "Dr. A ", "St ", "1, ", "(1) ", "#1 ", "Mr A ",
]  # fmt: skip
CLASSES = [
    getattr(recognizers, name)
    for name in dir(recognizers)
    if name.endswith("Recognizer")
    and name not in ("EntityRecognizer", "RegexRecognizer", "RecognizerResult")
]


def _seconds(recognizer: object, text: str) -> float:
    started = time.perf_counter()
    recognizer.analyze(text, recognizer.supported_entities, None)  # type: ignore[attr-defined]
    return time.perf_counter() - started


@pytest.mark.parametrize(
    "make", [*CLASSES, recognizers.bounded_url_recognizer], ids=lambda c: c.__name__
)
def test_every_recognizer_grows_linearly(make: type) -> None:
    recognizer = make()
    cls = type(recognizer)
    for unit in UNITS:
        small = unit * (4000 // len(unit))
        large = unit * (16000 // len(unit))
        # The best of three: a busy machine makes single timings noisy, never faster.
        t_small = min(_seconds(recognizer, small) for _ in range(3))
        t_large = min(_seconds(recognizer, large) for _ in range(3))
        assert t_large < max(8 * t_small, 0.02), (cls.__name__, repr(unit), t_small, t_large)
        assert t_large / 16 < 0.05, (cls.__name__, repr(unit), t_large)  # < 50 ms per KB
