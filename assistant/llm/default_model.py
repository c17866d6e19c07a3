"""The shipped grounded model: its adapter merged into the base, registered, and served.

The repository ships a small LoRA adapter (``models/grounded-smollm2``) trained by the
product's own learning loop on the bootstrap dataset, with a manifest of the data, the
configuration and the evaluation that produced it. On first use the adapter is merged into
the configured base GGUF and quantized (a few seconds, in numpy and llama.cpp), registered
as a model version whose parent is the base, and made active, once: an admin who later
rolls back to the base, or promotes another version, keeps that choice.

Nothing happens when the configured base is not the file the adapter was trained on (an
operator who serves another model gets that model).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select

from assistant.llm import registry
from assistant.storage import models
from assistant.storage.db import Database
from assistant.storage.models import ModelKind
from training.config import QUANTIZATIONS, Quantization

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShippedAdapter:
    folder: Path
    manifest: dict[str, Any]

    @property
    def digest(self) -> str:
        """A short digest of the adapter weights and manifest: the version's identity."""
        h = hashlib.sha256()
        for name in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json"):
            h.update((self.folder / name).read_bytes())
        return h.hexdigest()[:12]

    @property
    def version_name(self) -> str:
        return f"{self.folder.name}-{self.digest}"


def read_adapter(folder: Path) -> ShippedAdapter | None:
    """The adapter in ``folder`` with its manifest, or None when there is none."""
    manifest = folder / "manifest.json"
    if not (manifest.is_file() and (folder / "adapter" / "adapter_model.safetensors").is_file()):
        return None
    return ShippedAdapter(folder, json.loads(manifest.read_text(encoding="utf-8")))


def file_sha256(path: Path, cache: Path | None = None) -> str:
    """SHA-256 of a file, remembered beside ``cache`` by path, size and mtime."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if cache is not None and cache.is_file():
        known = json.loads(cache.read_text())
        if known.get("key") == key:
            return str(known["sha256"])
    from assistant.artifacts.store import file_digest

    value = file_digest(path).sha256
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "sha256": value}))
    return value


def fits_base(adapter: ShippedAdapter, base: Path, models_dir: Path) -> bool:
    """Whether ``base`` is the very file the adapter was trained on."""
    wanted = adapter.manifest.get("base_model", {}).get("sha256")
    if not wanted or not base.is_file():
        return False
    return file_sha256(base, models_dir / f".{base.name}.sha256.json") == wanted


def merged_file(adapter: ShippedAdapter, base: Path, models_dir: Path, threads: int) -> Path:
    """The adapter merged into ``base`` and quantized, made once (atomic write)."""
    quantization = str(adapter.manifest.get("quantization", "q8_0"))
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"the shipped adapter asks for an unknown quantization {quantization!r}")
    target = models_dir / f"{adapter.version_name}.{quantization.upper()}.gguf"
    if not target.is_file():
        from training.export import merge_adapter

        result = merge_adapter(
            base, adapter.folder / "adapter", target, cast(Quantization, quantization), threads
        )
        logger.info(
            "shipped model %s merged and quantized in %.1fs", adapter.version_name, result.seconds
        )
    return target


def ensure_default_model(
    db: Database, base: Path, adapter_folder: Path | None, models_dir: Path, threads: int = 2
) -> registry.ModelVersionInfo | None:
    """Register (and the first time, activate) the shipped grounded model; None if none."""
    if adapter_folder is None:
        return None
    adapter = read_adapter(adapter_folder)
    if adapter is None:
        logger.warning("no shipped adapter in %s: serving the base model", adapter_folder)
        return None
    if not fits_base(adapter, base, models_dir):
        logger.warning(
            "the shipped adapter %s was trained on another base than %s: not served",
            adapter.version_name,
            base.name,
        )
        return None
    base_version = registry.ensure_base_version(db, base)
    existing = _version_named(db, adapter.version_name)
    if existing is not None and Path(existing.base_path).is_file():
        return existing
    path = merged_file(adapter, base, models_dir, threads)
    if existing is not None:  # registered before, its file since removed: made again
        return existing
    version = registry.register_version(
        db,
        adapter.version_name,
        kind=ModelKind.MERGED,
        base_path=path,
        metrics={"shipped": _lineage(adapter)},
        parent_id=base_version.id,
        notes=f"shipped grounded model ({adapter.folder.name}); see its manifest.json",
    )
    # Served when nothing else was chosen: the base, or an earlier shipped model (a new
    # release replaces it); a model an admin promoted stays.
    active = registry.active_version(db)
    if active is None or active.kind is ModelKind.BASE or "shipped" in active.metrics:
        version = registry.activate_version(db, version.id, None, reason="install")
    return version


def _version_named(db: Database, name: str) -> registry.ModelVersionInfo | None:
    with db.session() as session:
        row = session.scalars(
            select(models.ModelVersion).where(models.ModelVersion.name == name)
        ).first()
        return registry.get_version(db, row.id) if row is not None else None


def _lineage(adapter: ShippedAdapter) -> dict[str, Any]:
    """What the admin pages show of where the shipped model came from."""
    manifest = adapter.manifest
    dataset = manifest.get("dataset", {})
    return {
        "adapter": adapter.folder.name,
        "digest": adapter.digest,
        "base_model": manifest.get("base_model"),
        "dataset_content_hash": dataset.get("content_hash"),
        "dataset_stats": dataset.get("provenance", {}).get("stats"),
        "training_config": manifest.get("training_config"),
        "evaluation": manifest.get("evaluation"),
        "reproduce": manifest.get("reproduce"),
    }
