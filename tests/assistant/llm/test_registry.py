"""The model registry: one active version, promotion, rejection and rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import Conflict, InvalidInput
from assistant.llm import registry
from assistant.storage.db import Database
from assistant.storage.models import ModelKind, ModelState


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    database.upgrade()
    yield database
    database.dispose()


def gguf(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"GGUF")
    return path


def test_the_base_model_becomes_active_once(db: Database, tmp_path: Path) -> None:
    base = gguf(tmp_path, "base.gguf")
    first = registry.ensure_base_version(db, base)
    again = registry.ensure_base_version(db, base)
    assert first.id == again.id and again.is_active
    assert [v.name for v in registry.list_versions(db)] == ["base"]


def test_a_changed_model_setting_serves_the_new_file(db: Database, tmp_path: Path) -> None:
    old = registry.ensure_base_version(db, gguf(tmp_path, "old.gguf"))
    tuned = registry.register_version(
        db, "ft-1", kind=ModelKind.MERGED, base_path=gguf(tmp_path, "ft.gguf"), parent_id=old.id
    )
    registry.activate_version(db, tuned.id)
    # Restarted with the same setting: the trained model keeps serving.
    assert registry.ensure_base_version(db, tmp_path / "old.gguf").id == tuned.id
    # Restarted with another model file: it is registered and serves.
    new = registry.ensure_base_version(db, gguf(tmp_path, "new.gguf"))
    assert new.is_active and new.kind is ModelKind.BASE and new.name != "base"
    assert new.base_path == (tmp_path / "new.gguf").resolve()
    assert registry.get_version(db, tuned.id).state is ModelState.RETIRED
    # And back: the old base row is reused, not duplicated.
    again = registry.ensure_base_version(db, tmp_path / "old.gguf")
    assert again.id == old.id and again.is_active
    assert len(registry.list_versions(db)) == 3


def test_promote_then_roll_back_keeps_exactly_one_active(db: Database, tmp_path: Path) -> None:
    base = registry.ensure_base_version(db, gguf(tmp_path, "base.gguf"))
    candidate = registry.register_version(
        db,
        "lora-1",
        kind=ModelKind.ADAPTER,
        base_path=base.base_path,
        adapter_path=gguf(tmp_path, "lora-1.gguf"),
    )
    assert candidate.state is ModelState.CANDIDATE
    assert registry.active_version(db).id == base.id  # registering does not serve it

    registry.activate_version(db, candidate.id)
    assert registry.active_version(db).id == candidate.id
    assert registry.get_version(db, base.id).state is ModelState.RETIRED

    back = registry.rollback(db)
    assert back.id == base.id
    states = {v.name: v.state for v in registry.list_versions(db)}
    assert states == {"base": ModelState.ACTIVE, "lora-1": ModelState.RETIRED}


def test_a_rejected_candidate_can_never_serve(db: Database, tmp_path: Path) -> None:
    registry.ensure_base_version(db, gguf(tmp_path, "base.gguf"))
    bad = registry.register_version(
        db, "scrambled", kind=ModelKind.MERGED, base_path=gguf(tmp_path, "merged.gguf")
    )
    registry.reject_version(db, bad.id, {"gate": "rougeL regressed"})
    with pytest.raises(Conflict):
        registry.activate_version(db, bad.id)
    assert registry.active_version(db).name == "base"


def test_missing_files_and_duplicate_names_are_refused(db: Database, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        registry.register_version(
            db, "ghost", kind=ModelKind.MERGED, base_path=tmp_path / "absent.gguf"
        )
    with pytest.raises(InvalidInput):
        registry.register_version(
            db, "no-adapter", kind=ModelKind.ADAPTER, base_path=gguf(tmp_path, "b.gguf")
        )
    registry.register_version(db, "once", kind=ModelKind.MERGED, base_path=gguf(tmp_path, "m"))
    with pytest.raises(Conflict):
        registry.register_version(db, "once", kind=ModelKind.MERGED, base_path=gguf(tmp_path, "m2"))


def test_rollback_with_no_history_is_a_conflict(db: Database, tmp_path: Path) -> None:
    registry.ensure_base_version(db, gguf(tmp_path, "base.gguf"))
    with pytest.raises(Conflict):
        registry.rollback(db)
