"""Versioned dataset folders: atomic write, content hash, the three export formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.datasets import content_hash, read_examples, read_manifest, write_dataset
from training.examples import Example, PreferencePair

SYSTEM = "Answer from the sources."


def sample() -> tuple[list[Example], list[Example], list[PreferencePair]]:
    train = [
        Example(
            "What is asthma?", "[1] Asthma\nA lung disease.", "A lung disease [1].", ("review:1",)
        )
    ]
    validation = [Example("What is gout?", "", "A kind of arthritis.", ("review:2",))]
    pairs = [PreferencePair("What is gout?", "", "A kind of arthritis.", "A bird.", ("review:2",))]
    return train, validation, pairs


def test_write_read_and_exports(tmp_path: Path) -> None:
    train, validation, pairs = sample()
    files = write_dataset(tmp_path, 1, train, validation, pairs, {"review_ids": [1, 2]}, SYSTEM)
    assert files.path == tmp_path / "v0001" and (
        files.n_train,
        files.n_validation,
        files.n_pairs,
    ) == (1, 1, 1)
    assert read_examples(files.path, "train") == train
    assert read_examples(files.path, "train")[0].source_ids == ("review:1",)
    manifest = read_manifest(files.path)
    assert manifest["content_hash"] == files.content_hash and manifest["provenance"] == {
        "review_ids": [1, 2]
    }

    alpaca = json.loads(files.export_path("alpaca").read_text())
    assert alpaca[0] == {
        "instruction": "What is asthma?",
        "input": "[1] Asthma\nA lung disease.",
        "output": "A lung disease [1].",
    }
    chat = [json.loads(line) for line in files.export_path("sharegpt").read_text().splitlines()]
    # The messages are laid out exactly as the served prompt lays them out: a constant
    # system message, then the evidence and the question.
    assert chat[0]["messages"][0] == {"role": "system", "content": SYSTEM}
    assert chat[0]["messages"][1] == {
        "role": "user",
        "content": "[1] Asthma\nA lung disease.\n\nQuestion: What is asthma?",
    }
    assert [m["role"] for m in chat[0]["messages"]] == ["system", "user", "assistant"]
    assert chat[1]["messages"][1]["content"].startswith("Question: ")  # no empty listing
    dpo = [json.loads(line) for line in files.export_path("dpo").read_text().splitlines()]
    assert (
        dpo[0]["chosen"][0]["content"] == "A kind of arthritis."
        and dpo[0]["rejected"][0]["content"] == "A bird."
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    with pytest.raises(FileExistsError):
        write_dataset(tmp_path, 1, train, validation, pairs, {}, SYSTEM)
    with pytest.raises(ValueError):
        files.export_path("csv")


def test_content_hash_ignores_provenance_but_not_text() -> None:
    train, validation, pairs = sample()
    relabelled = [Example(e.instruction, e.input, e.output, ("review:99",)) for e in train]
    assert content_hash(train, validation, pairs) == content_hash(relabelled, validation, pairs)
    changed = [Example("What is asthma?", "", "Something else entirely.")]
    assert content_hash(train, validation, pairs) != content_hash(changed, validation, pairs)
    # The same example on the other side of the split is a different dataset.
    assert content_hash(train, validation, pairs) != content_hash(validation, train, pairs)


def test_a_failed_write_leaves_no_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    train, validation, pairs = sample()

    def broken_rename(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError):
        write_dataset(tmp_path, 1, train, validation, pairs, {}, SYSTEM)
    assert list(tmp_path.iterdir()) == []
