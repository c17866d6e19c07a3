"""The bodies of the learning loop's JSON endpoints (web/training.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.learning.schedule import SCHEDULE_BOUNDS
from training.config import BOUNDS, MAX_LEARNING_RATE, Quantization
from web.schemas import Body, Id, Job, Timestamp


class RunRequest(Body):
    """A training run's settings (absent: the settings' defaults); the training config checks
    them again (training/config.py), for every way a run starts."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: Id | None = Field(None, description="Default: the newest dataset.")
    # prefix tuning cannot be exported to GGUF, so it is not offered here.
    method: Literal["lora", "full"] | None = None
    epochs: int | None = Field(None, ge=BOUNDS["epochs"][0], le=BOUNDS["epochs"][1])
    learning_rate: float | None = Field(None, gt=0, le=MAX_LEARNING_RATE)
    r: int | None = Field(None, ge=BOUNDS["r"][0], le=BOUNDS["r"][1])
    alpha: int | None = Field(None, ge=BOUNDS["alpha"][0], le=BOUNDS["alpha"][1])
    dropout: float | None = Field(None, ge=0, lt=1)
    batch_size: int | None = Field(None, ge=BOUNDS["batch_size"][0], le=BOUNDS["batch_size"][1])
    max_seq_len: int | None = Field(None, ge=BOUNDS["max_seq_len"][0], le=BOUNDS["max_seq_len"][1])
    max_steps: int | None = Field(None, ge=0, le=10_000_000)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    quantization: Quantization | None = None


class ScheduleChange(Body):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    interval_minutes: int | None = Field(
        None,
        ge=SCHEDULE_BOUNDS["interval_minutes"][0],
        le=SCHEDULE_BOUNDS["interval_minutes"][1],
    )
    min_new_examples: int | None = Field(
        None,
        ge=SCHEDULE_BOUNDS["min_new_examples"][0],
        le=SCHEDULE_BOUNDS["min_new_examples"][1],
    )


class RollbackRequest(Body):
    version_id: Id | None = Field(None, description="Default: the version served before.")


class Dataset(BaseModel):
    id: int
    version: int
    content_hash: str
    n_train: int
    n_validation: int
    n_pairs: int
    created_at: Timestamp | None
    stats: dict[str, Any]
    exports: dict[str, str] = Field(description="Download links by format.")


class Version(BaseModel):
    id: int
    name: str
    kind: str
    state: str
    dataset_id: int | None
    parent_id: int | None
    created_at: Timestamp | None
    activated_at: Timestamp | None
    metrics: dict[str, Any] = Field(description="The stored candidate-vs-active comparison.")


class DatasetList(BaseModel):
    datasets: list[Dataset]


class RunList(BaseModel):
    runs: list[Job] = Field(description="Recent dataset and training jobs, newest first.")


class LossHistory(BaseModel):
    history: list[dict[str, Any]] = Field(description="Train and validation loss per step.")


class VersionList(BaseModel):
    models: list[Version]


class Schedule(BaseModel):
    enabled: bool
    interval_minutes: int
    min_new_examples: int


class ScheduleState(BaseModel):
    schedule: Schedule
    new_examples: int = Field(description="Reviewed answers not yet in a dataset.")


class ScheduleSaved(BaseModel):
    schedule: Schedule
