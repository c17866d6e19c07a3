"""Datasets from reviewed feedback: what a reviewer approved becomes a versioned, scrubbed
dataset (the previous version's examples plus the new ones).

The heavy work lives in ``training/``; this module reads and writes the database and files.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from assistant.errors import NotFound
from assistant.infra.locks import Lease
from assistant.learning.folders import datasets_dir
from assistant.storage import models
from assistant.storage.db import Database
from assistant.storage.models import ReviewState
from training.examples import Example, FeedbackRecord, FilterRules, Outcome, PreferencePair
from training.prompt_format import SYSTEM_PROMPT

if TYPE_CHECKING:
    from assistant.services import Services
    from training.datasets import DatasetFiles

logger = logging.getLogger(__name__)


DATASET_LOCK = "dataset"


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    version: int
    content_hash: str
    n_train: int
    n_validation: int
    n_pairs: int
    path: Path
    provenance: dict[str, Any]
    created_at: datetime


def _dataset_info(row: models.Dataset) -> DatasetInfo:
    return DatasetInfo(
        row.id,
        row.version,
        row.content_hash,
        row.n_train,
        row.n_validation,
        row.n_pairs,
        Path(row.path),
        dict(row.provenance or {}),
        row.created_at,
    )


# ---- feedback -> records ---------------------------------------------------------------------
def _decided_unprocessed(session: Any) -> list[models.ReviewItem]:
    return list(
        session.scalars(
            select(models.ReviewItem)
            .where(
                models.ReviewItem.processed.is_(False),
                models.ReviewItem.state != ReviewState.PENDING,
            )
            .order_by(models.ReviewItem.id)
        )
    )


def new_examples_count(db: Database) -> int:
    """Reviewed answers not yet in a dataset (what the schedule counts)."""
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    models.ReviewItem.processed.is_(False),
                    models.ReviewItem.state != ReviewState.PENDING,
                )
            )
            or 0
        )


def collect_records(db: Database) -> tuple[list[FeedbackRecord], list[int], list[int]]:
    """Records of every decided, unprocessed review item; with the review and feedback ids.

    Only what a reviewer approved becomes a target:
    - approved: the answer as it was;
    - edited: the reviewer's edit, or the user correction the reviewer accepted word for word
      (``accepted_feedback_id``; its text was copied into the decision when it was made, so
      nothing posted after the decision is ever read), with a pair: edit over answer;
    - rejected: nothing (the item is consumed).
    Each record names the review, the answer, the reviewer, the question's author and, for an
    accepted correction, the feedback row.
    """
    records: list[FeedbackRecord] = []
    review_ids: list[int] = []
    feedback_ids: list[int] = []
    with db.session() as session:
        for item in _decided_unprocessed(session):
            review_ids.append(item.id)
            message = item.message
            feedback_ids.extend(
                session.scalars(
                    select(models.Feedback.id).where(
                        models.Feedback.message_id == message.id,
                        models.Feedback.processed.is_(False),
                    )
                )
            )
            if item.state is ReviewState.APPROVED:
                outcome, target = Outcome.APPROVED, None
            elif item.state is ReviewState.EDITED and item.edited_answer:
                outcome, target = Outcome.EDITED, item.edited_answer
            else:
                continue
            question = session.scalars(
                select(models.Message.content)
                .where(
                    models.Message.conversation_id == message.conversation_id,
                    models.Message.role == "user",
                    models.Message.id < message.id,
                )
                .order_by(models.Message.id.desc())
                .limit(1)
            ).first()
            if not question:
                continue
            records.append(
                FeedbackRecord(
                    outcome=outcome,
                    question=question,
                    context=_served_context(session, message.sources or message.citations or []),
                    answer=message.content,
                    corrected=target,
                    source_ids=_provenance(item, message),
                )
            )
    return records, review_ids, feedback_ids


def _provenance(item: models.ReviewItem, message: models.Message) -> tuple[str, ...]:
    """Who and what made a training record: the decision, the answer, the reviewer, the
    question's author, the accepted correction."""
    ids = [f"review:{item.id}", f"message:{message.id}", f"reviewer:{item.reviewer_id}"]
    ids.append(f"author:{message.conversation.user_id}")
    if item.accepted_feedback_id is not None:
        ids.append(f"feedback:{item.accepted_feedback_id}")
    if item.decided_at is not None:
        ids.append(f"decided:{item.decided_at.isoformat(timespec='seconds')}")
    return tuple(ids)


def _served_context(session: Any, sources: list[dict[str, Any]]) -> str:
    """The evidence block the model read, rebuilt from the stored sources' spans."""
    from training.prompt_format import evidence_block

    items = []
    for source in sorted(sources, key=lambda c: int(c.get("n", 0))):
        document = session.scalars(
            select(models.Document).where(models.Document.doc_id == source.get("doc_id"))
        ).first()
        if document is None:
            continue
        start, end = int(source.get("start", 0)), int(source.get("end", 0))
        passage = document.text[start:end].strip()
        if passage:
            items.append((int(source.get("n", 0)), document.title, passage))
    return evidence_block(items)


def filter_rules(services: Services) -> FilterRules:
    s = services.settings.learning
    return FilterRules(
        min_output_chars=s.min_output_chars,
        max_output_chars=s.max_output_chars,
        near_duplicate_threshold=s.near_duplicate_threshold,
    )


# ---- datasets --------------------------------------------------------------------------------
def local_dataset(services: Services, info: DatasetInfo) -> DatasetInfo:
    """``info`` with a folder on this host (from the artifact store on another machine)."""
    folder = services.artifacts.dataset_folder(info.path, info.version, info.content_hash)
    return info if folder == info.path else replace(info, path=folder)


def latest_dataset(db: Database) -> DatasetInfo | None:
    with db.session() as session:
        row = session.scalars(
            select(models.Dataset).order_by(models.Dataset.version.desc()).limit(1)
        ).first()
        return _dataset_info(row) if row is not None else None


def list_datasets(db: Database) -> list[DatasetInfo]:
    with db.session() as session:
        rows = session.scalars(select(models.Dataset).order_by(models.Dataset.version.desc()))
        return [_dataset_info(row) for row in rows]


def get_dataset(db: Database, dataset_id: int) -> DatasetInfo:
    with db.session() as session:
        row = session.get(models.Dataset, dataset_id)
        if row is None:
            raise NotFound(f"no dataset {dataset_id}")
        return _dataset_info(row)


def _dataset_row(files: DatasetFiles, provenance: dict[str, Any]) -> models.Dataset:
    return models.Dataset(
        version=files.version,
        content_hash=files.content_hash,
        n_train=files.n_train,
        n_validation=files.n_validation,
        n_pairs=files.n_pairs,
        path=str(files.path),
        provenance=provenance,
    )


def next_dataset_version(services: Services, previous: DatasetInfo | None) -> int:
    """The next free version: past the newest recorded one and past every folder on disk (a
    build that crashed after renaming its folder, before recording it, leaves one behind)."""
    highest = previous.version if previous else 0
    folder = datasets_dir(services)
    if folder.is_dir():
        for path in folder.glob("v[0-9][0-9][0-9][0-9]"):
            highest = max(highest, int(path.name[1:]))
    return highest + 1


def record_dataset(db: Database, files: DatasetFiles, provenance: dict[str, Any]) -> DatasetInfo:
    """A dataset written elsewhere (the bootstrap) recorded as a version of its own."""
    with db.session() as session:
        row = _dataset_row(files, provenance)
        session.add(row)
        session.flush()
        return _dataset_info(row)


def build_dataset(services: Services) -> DatasetInfo | None:
    """A new dataset version: the previous version's examples plus the newly reviewed ones.

    None when there is nothing new. Rows are marked processed in the same transaction that
    records the dataset, and only after its files are durably written and renamed.
    """
    from safety.pii import scrub_example
    from training.datasets import write_dataset
    from training.examples import prepare, records_to_examples, split

    db = services.db
    with Lease(db, DATASET_LOCK, ttl_s=services.settings.learning.lock_ttl_s):
        records, review_ids, feedback_ids = collect_records(db)
        if not review_ids:
            return None
        scrubber = services.scrubber
        examples, pairs = records_to_examples(records, lambda r: scrub_example(scrubber, r))
        previous = latest_dataset(db)
        if previous is not None:
            previous = local_dataset(services, previous)
        carried = _carried_over(previous)
        kept, stats = prepare([*carried.examples, *examples], filter_rules(services))
        unique_pairs = list(
            {(p.prompt, p.chosen, p.rejected): p for p in [*carried.pairs, *pairs]}.values()
        )
        train, validation = split(kept, services.settings.learning.validation_fraction)
        version = next_dataset_version(services, previous)
        provenance = {
            "previous_version": previous.version if previous else None,
            "review_ids": review_ids,
            "feedback_ids": feedback_ids,
            "sources": carried.sources + [sid for r in records for sid in r.source_ids],
            "stats": stats,
        }
        files = write_dataset(
            datasets_dir(services),
            version,
            train,
            validation,
            unique_pairs,
            provenance,
            SYSTEM_PROMPT,
        )
        services.artifacts.publish_dataset(files.path, files.version, files.content_hash)
        info = _record_and_consume(db, files, provenance, review_ids, feedback_ids)
    logger.info(
        "dataset v%d: %d train, %d validation, %d pairs (%s)",
        version,
        info.n_train,
        info.n_validation,
        info.n_pairs,
        stats,
    )
    return info


@dataclass(frozen=True)
class _CarriedOver:
    """What a new dataset version keeps from the previous one."""

    examples: list[Example]
    pairs: list[PreferencePair]
    sources: list[str]


def _carried_over(previous: DatasetInfo | None) -> _CarriedOver:
    from training.datasets import read_examples

    if previous is None:
        return _CarriedOver([], [], [])
    examples = read_examples(previous.path, "train") + read_examples(previous.path, "validation")
    pairs = []
    for line in (previous.path / "pairs.jsonl").read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            pairs.append(
                PreferencePair(
                    record["prompt"],
                    record["input"],
                    record["chosen"],
                    record["rejected"],
                    tuple(record["source_ids"]),
                )
            )
    return _CarriedOver(examples, pairs, list(previous.provenance.get("sources", [])))


def _record_and_consume(
    db: Database,
    files: DatasetFiles,
    provenance: dict[str, Any],
    review_ids: list[int],
    feedback_ids: list[int],
) -> DatasetInfo:
    """Record the written dataset and mark its review items and feedback processed, in one
    transaction: a crash before it leaves them to the next build."""
    with db.session() as session:
        row = _dataset_row(files, provenance)
        session.add(row)
        for item in session.scalars(
            select(models.ReviewItem).where(models.ReviewItem.id.in_(review_ids))
        ):
            item.processed = True
        for feedback in session.scalars(
            select(models.Feedback).where(models.Feedback.id.in_(feedback_ids))
        ):
            feedback.processed = True
        session.flush()
        return _dataset_info(row)
