"""Citation precision/recall of the post-hoc attribution: the old lexical rule against the
current one, on the same generated answers (one generation per question).

    python benchmarks/citations.py --qa FILE [--limit N] [--collection C] [--json]

The old rule (before issue 4): a sentence got the marker of the source sharing the largest
share of its content words, from 30% up. The current one: ``assistant.prompts.
attribute_sentences``. Both see the same raw answer and the same sources.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_MARKER = re.compile(r"\[(\d{1,3})\]")


def old_attribution(answer: str, sources: list[Any]) -> str:
    """The rule this project shipped before: best word overlap >= 0.3 wins."""
    from assistant.prompts import _content_words

    vocabularies = [(s.n, _content_words(s.text + " " + s.hit.chunk.title)) for s in sources]
    pieces = []
    for match in _SENTENCE.finditer(answer):
        sentence = match.group()
        words = _content_words(sentence)
        if _MARKER.search(sentence) or len(words) < 3:
            pieces.append(sentence)
            continue
        best_n, best = 0, 0.0
        for n, vocabulary in vocabularies:
            overlap = len(words & vocabulary) / len(words)
            if overlap > best:
                best_n, best = n, overlap
        if best >= 0.3:
            stripped = sentence.rstrip()
            sentence = f"{stripped} [{best_n}]{sentence[len(stripped) :]}"
        pieces.append(sentence)
    return "".join(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qa", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--collection", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from assistant.answer_evaluation import answer_cases
    from assistant.errors import AssistantError
    from assistant.pipeline import AnswerPipeline
    from assistant.prompts import attribute_sentences, cited_numbers
    from assistant.services import Services
    from assistant.settings import Settings

    services = Services(Settings())
    captured: list[tuple[str, list[Any]]] = []
    original = AnswerPipeline._cite

    def spy(raw: str, sources: list[Any]) -> Any:
        captured.append((raw, sources))
        return original(raw, sources)

    AnswerPipeline._cite = staticmethod(spy)  # type: ignore[method-assign]
    counts = {name: {"cited": 0, "gold": 0, "questions_with_gold": 0} for name in ("old", "new")}
    cases = answer_cases(args.qa, args.limit)
    for case in cases:
        captured.clear()
        try:
            services.pipeline.answer(case.question, args.collection, use_cache=False)
        except AssistantError as exc:  # e.g. a timeout on a loaded machine: skip the question
            print(f"skipped a question: {exc.code}", file=sys.stderr)
        if not captured:
            continue
        raw, sources = captured[-1]
        by_n = {s.n: s.hit.chunk.doc_id for s in sources}
        for name, attribute in (("old", old_attribution), ("new", attribute_sentences)):
            text = raw if cited_numbers(raw) else attribute(raw, sources)
            docs = [by_n[n] for n in cited_numbers(text) if n in by_n]
            counts[name]["cited"] += len(docs)
            counts[name]["gold"] += sum(d == case.doc_id for d in docs)
            counts[name]["questions_with_gold"] += case.doc_id in docs
    figures: dict[str, Any] = {"n": len(cases)}
    for name, c in counts.items():
        figures[f"{name}_citation_precision"] = (
            round(c["gold"] / c["cited"], 4) if c["cited"] else 0.0
        )
        figures[f"{name}_citation_recall"] = round(c["questions_with_gold"] / len(cases), 4)
        figures[f"{name}_citations"] = c["cited"]
    print(json.dumps(figures) if args.json else figures)


if __name__ == "__main__":
    main()
