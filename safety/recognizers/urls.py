"""Presidio's URL recognizer, bounded word by word."""

from __future__ import annotations

import re

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

# A URL is one word; its host has at most 127 labels and 253 characters, a usable one far
# fewer. Longer or dottier words are not looked at.
MAX_URL_CHARS = 512
MAX_URL_DOTS = 32


def bounded_url_recognizer() -> EntityRecognizer:
    """Presidio's URL recognizer, run word by word on the words that can be URLs.

    Its pattern scans up to 253 host characters from every position and tries some 1,500
    top-level domains at each dot: on "a." repeated 2,000 times that was 2.8 s (0.7 ms a
    character) under the analyzer's lock, during which no other request's text could be
    scrubbed. Run on words of at most MAX_URL_CHARS characters and MAX_URL_DOTS dots, its
    work per word is bounded, and a text's is linear in its length.
    """
    from presidio_analyzer.predefined_recognizers import UrlRecognizer

    # The ignores: where Presidio's classes type as Any (subclassing, returning Any).
    class BoundedUrlRecognizer(UrlRecognizer):
        def analyze(
            self,
            text: str,
            entities: list[str],
            nlp_artifacts: NlpArtifacts | None = None,
            regex_flags: int | None = None,
        ) -> list[RecognizerResult]:
            results: list[RecognizerResult] = []
            for word in re.finditer(r"\S+", text):
                candidate = word.group()
                if "." not in candidate or len(candidate) > MAX_URL_CHARS:
                    continue
                if candidate.count(".") > MAX_URL_DOTS:
                    continue
                for result in super().analyze(candidate, entities, None, regex_flags):
                    result.start += word.start()
                    result.end += word.start()
                    results.append(result)
            return results

    return BoundedUrlRecognizer()
