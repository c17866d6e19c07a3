"""Misspelled query words mapped to the index's own vocabulary.

People type "desease", "hereditery" and "olivopontocerebeller"; BM25 knows only the words
of the corpus and dropped the rest, so a misspelled disease name, often the one word that
matters, counted for nothing. A word the vocabulary lacks is replaced by the vocabulary
word closest to it in edit distance (one edit for words under eight letters, two from
eight on), the most frequent one on ties. Words the vocabulary has are never changed, and
words shorter than five letters are left alone: one edit turns them into too many others.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

MIN_LENGTH = 5
TWO_EDITS_FROM = 8
# Queries repeat; the bound keeps memory flat on a long-running server.
CACHE_SIZE = 50_000


class SpellingCorrector:
    """Maps an out-of-vocabulary word to its closest vocabulary word, or None.

    ``frequency`` gives each vocabulary word's weight (its document frequency). Words are
    grouped by length, so a lookup compares only words that could be close enough.
    """

    def __init__(self, frequency: Mapping[str, int]) -> None:
        self._frequency = frequency
        self._by_length: dict[int, list[str]] | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, str | None] = {}

    def _groups(self) -> dict[int, list[str]]:
        # Built on the first correction: an index whose queries are all spelt right
        # never pays for it.
        with self._lock:
            if self._by_length is None:
                groups: dict[int, list[str]] = {}
                for word in self._frequency:
                    if len(word) >= MIN_LENGTH - 1 and word.isalpha():
                        groups.setdefault(len(word), []).append(word)
                self._by_length = groups
        return self._by_length

    def correct(self, word: str) -> str | None:
        """The vocabulary word meant by ``word``; None when it is known or nothing is close."""
        if word in self._frequency or len(word) < MIN_LENGTH or not word.isalpha():
            return None
        if word in self._cache:
            return self._cache[word]
        from rapidfuzz import process
        from rapidfuzz.distance import OSA  # an adjacent swap ("diabtees") is one edit

        limit = 2 if len(word) >= TWO_EDITS_FROM else 1
        groups = self._groups()
        choices = [
            w for n in range(len(word) - limit, len(word) + limit + 1) for w in groups.get(n, ())
        ]
        matches = process.extract(
            word, choices, scorer=OSA.distance, score_cutoff=limit, limit=None
        )
        best = min(
            ((int(distance), -self._frequency[match], match) for match, distance, _ in matches),
            default=None,
        )
        result = best[2] if best is not None else None
        if len(self._cache) < CACHE_SIZE:
            self._cache[word] = result
        return result
