"""No recognizer pattern is super-linear: adversarial repeats of every separator, at two
sizes; quadratic work would take 16 times as long for 4 times the text."""

from __future__ import annotations

import time

import pytest

from safety.recognizers import domain_recognizers
from safety.recognizers.urls import bounded_url_recognizer

UNITS = [
    "a.", "a ", "A, ", "1 a ", "A. ", "a-", "1-", "1.", "1 ", "Aa ", "a'", "a\n", "A\n",
    "@a.", "a@", "http://a.", ":/", ".com ", "Dr. A ", "St ", "1, ", "(1) ", "#1 ", "Mr A ",
]  # fmt: skip
# Every recognizer the product runs, by name.
CLASSES = sorted((type(r) for r in domain_recognizers()), key=lambda c: c.__name__)


def _seconds(recognizer: object, text: str) -> float:
    started = time.perf_counter()
    recognizer.analyze(text, recognizer.supported_entities, None)  # type: ignore[attr-defined]
    return time.perf_counter() - started


@pytest.mark.parametrize("make", [*CLASSES, bounded_url_recognizer], ids=lambda c: c.__name__)
def test_every_recognizer_grows_linearly(make: type) -> None:
    recognizer = make()
    cls = type(recognizer)
    for unit in UNITS:
        small = unit * (4000 // len(unit))
        large = unit * (16000 // len(unit))
        # A busy machine makes timings noisy, never faster: each size is timed best of
        # three, and the pair is measured again (up to three rounds) before it counts as
        # super-linear. Quadratic work is over the bound in every round, not in one.
        for _round in range(3):
            t_small = min(_seconds(recognizer, small) for _ in range(3))
            t_large = min(_seconds(recognizer, large) for _ in range(3))
            if t_large < max(8 * t_small, 0.02):
                break
        assert t_large < max(8 * t_small, 0.02), (cls.__name__, repr(unit), t_small, t_large)
        assert t_large / 16 < 0.05, (cls.__name__, repr(unit), t_large)  # < 50 ms per KB
