"""PII detection: this product's recognizers against Presidio's defaults, on the same data.

    python benchmarks/pii.py [--data FILE] [--limit N] [--json]

Both run on the same spaCy model and are scored the same way (safety/evaluation.py: span
overlap, the documented label mapping). Presidio's types are mapped to the product's the same
way (UK_NHS numbers are US phone numbers in this data). The scrub timing is the whole
``scrub()`` (detection and replacement) per message. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.evaluation.retrieval import read_jsonl  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from safety.evaluation import Span, pii_case, score_pii  # noqa: E402
from safety.pii import PIIScrubber, build_analyzer  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "pii" / "pii_dev.jsonl"
# Presidio's own names for what this product calls otherwise.
PRESIDIO_TYPES = {"UK_NHS": "PHONE_NUMBER"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="Only the JSON line.")
    args = parser.parse_args()
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)

    cases = [pii_case(r) for r in read_jsonl(args.data)][: args.limit]
    settings = Settings()
    scrubber = PIIScrubber(settings.safety)
    ours = score_pii(
        lambda t: [Span(s.start, s.end, s.entity_type) for s in scrubber.detect(t)], cases
    )
    timings = []
    for case in cases:
        started = time.perf_counter()
        scrubber.scrub(case.text)
        timings.append((time.perf_counter() - started) * 1000)

    defaults = build_analyzer(settings.safety.spacy_model, domain_recognizers=False)
    baseline = score_pii(
        lambda t: [
            Span(r.start, r.end, PRESIDIO_TYPES.get(r.entity_type, r.entity_type))
            for r in defaults.analyze(text=t, language="en")
        ],
        cases,
    )
    key_recall = {
        e: ours["per_entity"].get(e, {}).get("recall")
        for e in ("US_SSN", "PHONE_NUMBER", "EMAIL_ADDRESS", "CREDIT_CARD")
    }
    figures = {
        "n": len(cases),
        "f2": ours["f2"],
        "precision": ours["precision"],
        "recall": ours["recall"],
        "type_aware_f2": ours["type_aware_f2"],
        "key_entity_recall": key_recall,
        "detect_p50_ms": ours["p50_ms"],
        "scrub_p50_ms": round(statistics.median(timings), 2),
        "scrub_p95_ms": round(statistics.quantiles(timings, n=20)[-1], 2),
        "presidio_default_f2": baseline["f2"],
        "presidio_default_precision": baseline["precision"],
        "presidio_default_recall": baseline["recall"],
        "presidio_default_type_aware_f2": baseline["type_aware_f2"],
        "presidio_default_p50_ms": baseline["p50_ms"],
    }
    if not args.json:
        print("per entity (this product):")
        for entity, row in ours["per_entity"].items():
            print(f"  {entity:>22}: {row}")
        print("per entity (Presidio defaults):")
        for entity, row in baseline["per_entity"].items():
            print(f"  {entity:>22}: {row}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
