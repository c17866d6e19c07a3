"""Fitting answer types from a labelled QA file over the real fixture index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import InvalidInput
from assistant.evaluation.answer_types_fit import fit_and_write
from retrieval.answer_types import AnswerTypes

CONTRACT = "cuad:ce9b4389dd"  # a training document (md5 % 5 != 0) in the fixture index
PREFIX = "In the Distributor Agreement between ACCURAY INCORPORATED and SIEMENS: "
ROWS = [
    *(
        {
            "doc_id": CONTRACT,
            "category": "Document Name",
            "question": PREFIX + q,
            "evidence_spans": [{"start": 364, "end": 419}],
        }
        for q in (
            "What is the name of the contract?",
            "What is this agreement called?",
            "Which contract is this?",
        )
    ),
    *(
        {
            "doc_id": CONTRACT,
            "category": "Parties",
            "question": PREFIX + q,
            "evidence_spans": [{"start": 282, "end": 302}, {"start": 623, "end": 649}],
        }
        for q in ("Who are the parties?", "Who signed the contract?", "Which companies agree?")
    ),
    # About a held-out document: never used, whatever it says.
    {
        "doc_id": "cuad:heldout0",
        "category": "Parties",
        "question": "Who?",
        "evidence_spans": [{"start": 0, "end": 10}],
    },
]


def write_qa(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_fitted_from_training_documents_only_and_loaded_back(
    tmp_path: Path, indexed_services
) -> None:
    version = indexed_services.index.current()
    out = tmp_path / "types.npz"
    report = fit_and_write(
        write_qa(tmp_path / "qa.jsonl", ROWS),
        "category",
        "legal",
        version,
        indexed_services.embedder,
        out,
    )
    assert report["kinds"] == 2
    assert report["counts"] == {"read": 7, "held_out": 1, "no_passage": 0, "used": 6}
    types = AnswerTypes.load(out)
    assert types.kinds == ("Document Name", "Parties") and types.collection == "legal"
    assert types.dimension == indexed_services.embedder.dimension


def test_a_file_with_no_answer_in_the_index_is_refused(tmp_path: Path, indexed_services) -> None:
    rows = [
        {
            "doc_id": "cuad:not-indexed",
            "category": "Parties",
            "question": "Who?",
            "evidence_spans": [{"start": 0, "end": 5}],
        }
    ]
    with pytest.raises(InvalidInput):
        fit_and_write(
            write_qa(tmp_path / "qa.jsonl", rows),
            "category",
            "legal",
            indexed_services.index.current(),
            indexed_services.embedder,
            tmp_path / "t.npz",
        )


@pytest.mark.parametrize(
    "row",
    [
        {"doc_id": CONTRACT, "category": "Parties", "evidence_spans": [{"start": 0, "end": 5}]},
        {**ROWS[0], "evidence_spans": [{"start": "the top", "end": 5}]},
    ],
    ids=["no question", "a span that is not a number"],
)
def test_a_malformed_record_is_refused_with_a_message(
    tmp_path: Path, indexed_services, row: dict[str, object]
) -> None:
    with pytest.raises(InvalidInput):
        fit_and_write(
            write_qa(tmp_path / "qa.jsonl", [row]),
            "category",
            "legal",
            indexed_services.index.current(),
            indexed_services.embedder,
            tmp_path / "t.npz",
        )
    assert not (tmp_path / "t.npz").exists()
