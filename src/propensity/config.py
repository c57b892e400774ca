"""Settings read from the environment (prefix ``PROPENSITY_``) — nothing happens at import."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_n_jobs", "get_settings"]


def default_n_jobs() -> int:
    """Threads for model fitting: all cores of a small box, capped, never "let the library guess".

    LightGBM and OpenMP pick their own thread counts when none is given; on a busy two-core
    machine that was measured to be 50x slower, so every estimator gets an explicit count.
    """
    return max(1, min(os.cpu_count() or 1, 8))


class Settings(BaseSettings):
    """Runtime settings; every field can be set as ``PROPENSITY_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PROPENSITY_", extra="ignore")

    home: Path = Field(default=Path(".propensity"), description="Working folder for embedded stores.")
    n_jobs: int = Field(default_factory=default_n_jobs, ge=1, description="Threads used by estimators.")
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI (else MLFLOW_TRACKING_URI, else embedded SQLite)."
    )
    tracking: bool = Field(
        default=True,
        description="Record every training run with a bundle folder in MLflow (false: like --no-tracking).",
    )
    api_keys: SecretStr | None = Field(
        default=None, description="Comma-separated API keys for the scoring service."
    )
    api_keys_file: Path | None = Field(
        default=None, description="File of API keys (plain or sha256:<hex> per line)."
    )
    seed: int = Field(default=42, description="Default random seed.")
    engine: str = Field(
        default="duckdb",
        description="Engine of event work when none is given: duckdb or spark (the dashboard's analytics, "
        "validation and scoring, and the default of every command's --engine). Checked when used.",
    )
    spark_master: str = Field(
        default="local[2]",
        description="spark.master of the spark engine: local[N] or a cluster URL such as spark://host:7077.",
    )
    spark_partitions: int = Field(
        default=8, ge=1, description="spark.sql.shuffle.partitions of the spark engine."
    )
    spark_driver_memory: str = Field(default="2g", description="spark.driver.memory of the spark engine.")
    spark_workdir: Path | None = Field(
        default=None,
        description="Folder of the spark engine's intermediate files (executors write them, the driver reads "
        "them back); default: the system's temporary folder. On a cluster of several machines, a folder every "
        "node and the driver share.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()
