"""The search's own configuration: one frozen dataclass that validates itself.

Kept apart from ``retrieval.search`` (which needs numpy and the index) so that the product's
settings can compose it without importing the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Fusion = Literal["documents", "rrf"]


@dataclass(frozen=True)
class SearchParams:
    """How rankings are fused. The defaults are the measured best (benchmarks/RESULTS.md);
    the product's settings (retrieval.*) take theirs from here, with bounds and descriptions."""

    candidates: int = 100
    fusion: Fusion = "documents"
    doc_dense_weight: float = 0.5
    passage_dense_weight: float = 0.7
    passage_weight: float = 0.3
    rerank_docs: int = 10
    max_per_doc: int = 5
    title_weight: float = 0.4
    named_docs: int = 10
    intent_weight: float = 0.7
    answer_type_weight: float = 0.6
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.candidates < 1 or self.rerank_docs < 1 or self.max_per_doc < 1:
            raise ValueError("candidates, rerank_docs and max_per_doc must be positive")
        if self.named_docs < 0:
            raise ValueError("named_docs must not be negative")
        for name in (
            "doc_dense_weight",
            "passage_dense_weight",
            "intent_weight",
            "answer_type_weight",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
