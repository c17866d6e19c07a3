"""The default install serves the shipped grounded model, merged into the base it was
trained on, with its lineage; an admin's rollback is kept; another base is served as is."""

from __future__ import annotations

import pytest

from assistant.llm import registry
from assistant.llm.default_model import ensure_default_model, read_adapter
from assistant.settings import PROJECT_ROOT, default_chat_model
from assistant.storage.models import ModelKind

pytestmark = pytest.mark.slow

SHIPPED = PROJECT_ROOT / "models" / "grounded-smollm2"


def test_the_default_install_serves_the_shipped_grounded_model(fresh_services) -> None:
    adapter = read_adapter(SHIPPED)
    assert adapter is not None, "models/grounded-smollm2 must hold the adapter and its manifest"
    services = fresh_services
    with services.llm.use() as lease:  # what the first question does
        assert lease.backend.name.startswith(adapter.version_name)
    active = registry.active_version(services.db)
    assert active is not None and active.name == adapter.version_name
    assert active.kind is ModelKind.MERGED and active.parent_id is not None
    base = registry.get_version(services.db, active.parent_id)
    assert base.kind is ModelKind.BASE
    lineage = active.metrics["shipped"]
    assert lineage["dataset_content_hash"] == adapter.manifest["dataset"]["content_hash"]
    assert lineage["training_config"]["method"] == "lora"

    # An admin who rolls back to the base keeps the base: the shipped model is not re-imposed.
    registry.rollback(services.db)
    services.ensure_shipped_model()
    assert registry.active_version(services.db).id == base.id


def test_a_base_the_adapter_was_not_trained_on_is_served_as_it_is(fresh_services, tmp_path) -> None:
    from assistant.llm import requantized

    other = requantized(default_chat_model(), "Q8_0", tmp_path / "other")  # other bytes
    db = fresh_services.db
    assert ensure_default_model(db, other, SHIPPED, tmp_path / "models") is None
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").glob("*.gguf"))
