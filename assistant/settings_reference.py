"""docs/configuration.md, generated from the settings' own descriptions and bounds.

    python -m assistant.settings_reference > docs/configuration.md

A test compares the file with this output, so the reference never drifts from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from assistant.settings import PROJECT_ROOT, Settings

HEADER = """# Configuration

Every setting of the product, generated from `assistant/settings.py` (its descriptions and
bounds) by `python -m assistant.settings_reference > docs/configuration.md`. Settings are read
once per process from the environment, with the prefix `ASSISTANT_`; `__` separates a
section from its field (`ASSISTANT_LLM__N_THREADS=4`). Lists and maps are given as JSON.
"""


def _bounds(info: FieldInfo) -> str:
    parts = []
    for item in info.metadata:
        for name, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
        for name in ("min_length", "max_length"):
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{name.replace('_', ' ')} {value}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        # pydantic types default_factory as taking the validated data or not; ours take none.
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, Path):
        if "site-packages" in value.parts:
            return f"`{value.name}` of its PyPI package"
        try:
            return f"`{value.relative_to(PROJECT_ROOT)}`"
        except ValueError:
            return "(found at run time)" if value.is_absolute() else f"`{value}`"
    if value in (None, ""):
        return "empty"
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value)
        return f"`{text}`" if len(text) < 60 else "(see the description)"
    return f"`{value}`"


def _type(info: FieldInfo) -> str:
    text = str(info.annotation).replace("typing.", "").replace("pathlib.", "")
    return text.replace("<class '", "").replace("'>", "").replace("|", "or")


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            continue
        description = (info.description or "").replace("|", "\\|").replace("\n", " ")
        bounds = _bounds(info)
        rows.append(
            f"| `{prefix}{name.upper()}` | {_default(info)} | {_type(info)}"
            f"{' (' + bounds + ')' if bounds else ''} | {description} |"
        )
    return rows


def _sections(model: type[BaseModel], prefix: str) -> list[tuple[str, type[BaseModel], str]]:
    out = [("", model, prefix)]
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for title, sub, sub_prefix in _sections(annotation, f"{prefix}{name.upper()}__"):
                out.append((title or name, sub, sub_prefix))
    return out


def reference() -> str:
    lines = [HEADER]
    for title, model, prefix in _sections(Settings, "ASSISTANT_"):
        rows = _rows(model, prefix)
        if not rows:
            continue
        heading = title.replace("_", " ").capitalize() if title else "General"
        doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        lines += [f"## {heading}", ""]
        if doc and not doc.startswith("Usage docs") and title:
            lines += [doc, ""]
        lines += ["| variable | default | type | what |", "|---|---|---|---|", *rows, ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
