"""Versioned datasets on disk, and their exports (Alpaca JSON, ShareGPT JSONL, DPO JSONL).

A version is a folder ``v0001/`` written under a temporary name and renamed when complete,
so a crash never leaves a half-written version that looks whole. ``manifest.json`` holds
the content hash (of the records, not the files) and the provenance (source row ids).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import prompt_format
from training.examples import Example, PreferencePair

EXPORT_FORMATS = {"alpaca": "alpaca.json", "sharegpt": "sharegpt.jsonl", "dpo": "dpo.jsonl"}


@dataclass(frozen=True)
class DatasetFiles:
    """A written dataset version."""

    version: int
    path: Path
    content_hash: str
    n_train: int
    n_validation: int
    n_pairs: int

    def export_path(self, fmt: str) -> Path:
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; one of {sorted(EXPORT_FORMATS)}")
        return self.path / EXPORT_FORMATS[fmt]


def alpaca(examples: Iterable[Example]) -> list[dict[str, str]]:
    """Alpaca records: instruction, input (the cited context), output."""
    return [{"instruction": e.instruction, "input": e.input, "output": e.output} for e in examples]


def sharegpt(example: Example, system_prompt: str) -> dict[str, Any]:
    """A ShareGPT/chat record: the conversation as the served model sees it."""
    return {
        "messages": chat_messages(example.instruction, example.input, system_prompt)
        + [{"role": "assistant", "content": example.output}]
    }


def dpo(pair: PreferencePair, system_prompt: str) -> dict[str, Any]:
    """A DPO record (TRL's conversational preference format)."""
    return {
        "prompt": chat_messages(pair.prompt, pair.input, system_prompt),
        "chosen": [{"role": "assistant", "content": pair.chosen}],
        "rejected": [{"role": "assistant", "content": pair.rejected}],
    }


def chat_messages(instruction: str, context: str, system_prompt: str) -> list[dict[str, str]]:
    """System and user messages laid out exactly as the serving prompt lays them out."""
    return prompt_format.chat_messages(instruction, context, system_prompt)


def _jsonl(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)


def content_hash(
    train: Sequence[Example], validation: Sequence[Example], pairs: Sequence[PreferencePair]
) -> str:
    """SHA-256 of the records' text (provenance ids excluded: same content, same hash)."""
    digest = hashlib.sha256()
    for name, records in (("train", train), ("validation", validation), ("pairs", pairs)):
        digest.update(name.encode())
        for record in records:
            body = record.to_json()
            body.pop("source_ids")
            digest.update(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def write_dataset(
    root: Path,
    version: int,
    train: Sequence[Example],
    validation: Sequence[Example],
    pairs: Sequence[PreferencePair],
    provenance: dict[str, Any],
    system_prompt: str,
) -> DatasetFiles:
    """Write version ``version`` under ``root`` atomically (temp folder, fsync, rename)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"v{version:04d}"
    if final.exists():
        raise FileExistsError(f"dataset version {version} exists at {final}")
    digest = content_hash(train, validation, pairs)
    files = {
        "train.jsonl": _jsonl(e.to_json() for e in train),
        "validation.jsonl": _jsonl(e.to_json() for e in validation),
        "pairs.jsonl": _jsonl(p.to_json() for p in pairs),
        EXPORT_FORMATS["alpaca"]: json.dumps(
            alpaca([*train, *validation]), ensure_ascii=False, indent=1
        ),
        EXPORT_FORMATS["sharegpt"]: _jsonl(
            sharegpt(e, system_prompt) for e in [*train, *validation]
        ),
        EXPORT_FORMATS["dpo"]: _jsonl(dpo(p, system_prompt) for p in pairs),
        "manifest.json": json.dumps(
            {
                "version": version,
                "content_hash": digest,
                "n_train": len(train),
                "n_validation": len(validation),
                "n_pairs": len(pairs),
                "provenance": provenance,
            },
            indent=1,
            sort_keys=True,
        ),
    }
    staging = Path(tempfile.mkdtemp(prefix=f".v{version:04d}-", dir=root))
    try:
        for name, text in files.items():
            with open(staging / name, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        os.rename(staging, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DatasetFiles(version, final, digest, len(train), len(validation), len(pairs))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_examples(path: Path, split_name: str) -> list[Example]:
    """The ``train`` or ``validation`` examples of a written dataset version."""
    if split_name not in ("train", "validation"):
        raise ValueError("split must be 'train' or 'validation'")
    lines = (path / f"{split_name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [Example.from_json(json.loads(line)) for line in lines if line.strip()]


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / "manifest.json").read_text(encoding="utf-8"))
