from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.settings import Settings


def test_embedded_defaults_need_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.database.url == f"sqlite:///{tmp_path / 'assistant.db'}"
    assert settings.broker.url.startswith("sqla+sqlite:///")
    assert settings.broker.result_backend.startswith("db+sqlite:///")
    assert settings.llm.model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert settings.llm.model_path.is_file()
    assert (settings.retrieval.embedding_model / "config.json").is_file()
    assert settings.llm.n_threads == 2


def test_one_setting_switches_to_postgres_and_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_DATABASE__URL", "postgresql+psycopg://postgres@127.0.0.1/x")
    monkeypatch.setenv("ASSISTANT_BROKER__URL", "redis://127.0.0.1:6379/0")
    settings = Settings()
    assert settings.database.url.startswith("postgresql")
    assert settings.broker.url == "redis://127.0.0.1:6379/0"
    assert settings.broker.result_backend == "db+postgresql+psycopg://postgres@127.0.0.1/x"


def test_out_of_bounds_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_LLM__N_THREADS", "0")
    with pytest.raises(ValidationError, match="n_threads"):
        Settings()


def test_the_data_folder_is_private_to_its_owner(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assistant.services import Services
    from assistant.settings import Settings

    folder = tmp_path / "var"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    Services(Settings(data_dir=folder))
    assert folder.stat().st_mode & 0o777 == 0o700


def test_the_search_settings_are_the_search_params_with_the_same_defaults() -> None:
    """The search's parameters are declared once (retrieval/config.py): every one is a
    setting, with the search's own default, and the settings hand them back whole."""
    from dataclasses import fields

    from assistant.settings import RetrievalSettings
    from retrieval.config import SearchParams

    settings = RetrievalSettings()
    assert settings.search_params() == SearchParams()
    for field in fields(SearchParams):
        assert field.name in RetrievalSettings.model_fields, field.name
    changed = RetrievalSettings(title_weight=0.1, fusion="rrf").search_params()
    assert (changed.title_weight, changed.fusion) == (0.1, "rrf")


def test_every_flag_has_a_rule_and_every_rule_a_flag() -> None:
    from safety.config import FlagRules
    from safety.flags import Flag, guard_flag

    assert set(FlagRules.model_fields) == {flag.value for flag in Flag}
    rules = FlagRules(input_guard="off", model_declined="hold")
    assert rules.policy(guard_flag("block")) == "off"  # every guard:* flag has one rule
    assert rules.policy(Flag.MODEL_DECLINED) == "hold"


def test_settings_are_frozen_and_a_change_is_a_validated_copy(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    for assign in (
        lambda: setattr(settings.web, "port", 1),
        lambda: setattr(settings.safety.flag_rules, "thumbs_down", "hold"),
        lambda: setattr(settings.learning, "epochs", 9),
        lambda: setattr(settings, "data_dir", tmp_path / "other"),
    ):
        with pytest.raises(ValidationError, match="frozen"):
            assign()
    changed = settings.changed(web={"port": 9000}, learning={"epochs": 3})
    assert (changed.web.port, changed.learning.epochs) == (9000, 3)
    assert (settings.web.port, settings.learning.epochs) == (8000, 2)
    # The derived defaults are kept, and a change is checked like any setting.
    assert changed.database.url == settings.database.url == f"sqlite:///{tmp_path / 'assistant.db'}"
    with pytest.raises(ValidationError):
        settings.changed(web={"port": -5})


def test_services_take_prebuilt_parts_through_the_constructor(tmp_path: Path) -> None:
    from assistant.services import Services

    marker = object()
    services = Services(Settings(data_dir=tmp_path), {"pipeline": marker})
    assert services.pipeline is marker and services.loaded("pipeline")
    assert {"llm", "index", "scrubber", "chat", "history", "feedback"} <= set(Services.part_names())
    with pytest.raises(ValueError, match="not parts of Services: nonsense"):
        Services(Settings(data_dir=tmp_path), {"nonsense": marker})
