"""Where the learning loop keeps its files under the data folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.services import Services

logger = logging.getLogger(__name__)


def datasets_dir(services: Services) -> Path:
    return services.settings.data_dir / "datasets"


def runs_dir(services: Services) -> Path:
    return services.settings.data_dir / "training" / "runs"


def models_dir(services: Services) -> Path:
    return services.settings.data_dir / "models" / "trained"


def cache_dir(services: Services) -> Path:
    configured = services.settings.learning.cache_dir
    return configured or services.settings.data_dir / "models" / "cache"
