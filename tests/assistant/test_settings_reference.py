"""docs/configuration.md is the settings' own reference, regenerated from the code."""

from __future__ import annotations

from assistant.settings import PROJECT_ROOT, Settings
from assistant.settings_reference import reference


def test_the_configuration_reference_is_current() -> None:
    written = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == reference(), (
        "docs/configuration.md is out of date: "
        "python -m assistant.settings_reference > docs/configuration.md"
    )


def test_every_setting_is_described() -> None:
    text = reference()
    for section in ("LLM", "RETRIEVAL", "ANSWERS", "SAFETY", "LEARNING", "ARTIFACTS"):
        assert f"`ASSISTANT_{section}__" in text
    for name, info in Settings.model_fields.items():
        assert info.description or name in {
            "database",
            "broker",
            "retrieval",
            "llm",
            "safety",
            "web",
            "serving",
            "learning",
            "answers",
            "artifacts",
        }, name
