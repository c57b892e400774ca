"""Settings of the scoring service (pydantic-settings; ``PROPENSITY_SERVE_<FIELD>`` in the environment).

The API keys keep the names the rest of propensity uses: ``PROPENSITY_API_KEYS`` and
``PROPENSITY_API_KEYS_FILE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServeSettings"]


class ServeSettings(BaseSettings):
    """How the scoring service behaves; every field can be set in the environment.

    Example
    -------
    >>> ServeSettings(max_batch_records=500, api_keys="k1,k2")  # doctest: +SKIP
    """

    model_config = SettingsConfigDict(env_prefix="PROPENSITY_SERVE_", extra="ignore", populate_by_name=True)

    api_keys: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("api_keys", "PROPENSITY_API_KEYS"),
        description="Comma-separated API keys (env PROPENSITY_API_KEYS). When set, or when a keys file is, "
        "every route except /health needs one in X-API-Key (or Authorization: Bearer).",
    )
    api_keys_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("api_keys_file", "PROPENSITY_API_KEYS_FILE"),
        description="File of API keys, one per line, stored as sha256:<hex> (`propensity api-key` writes them).",
    )
    max_batch_records: int = Field(
        default=10_000, ge=1, description="Most records in one /predict/batch call."
    )
    max_explain_records: int = Field(
        default=100,
        ge=1,
        description="Most records in one /explain/batch call (explanations cost more than scores).",
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest request body accepted (bigger: 413)."
    )
    request_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a request may take, reading its body included (then 408/503).",
    )
    unknown_categories: Literal["other", "reject"] = Field(
        default="other",
        description="A category not seen in training: 'other' scores it like the rare training levels (the "
        "manifest's policy, with a warning in the response); 'reject' answers 422 listing the known levels.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (none by default: CORS is off)."
    )
    access_log: bool = Field(default=False, description="One JSON line per request on the access logger.")
    threads: int = Field(
        default=1, ge=1, description="Threads per batch prediction (a worker serves one core)."
    )
    batch_offload_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="Batch bodies of at least this many bytes are validated and scored in a worker thread, so "
        "the event loop keeps answering other requests meanwhile.",
    )
    public_docs: bool = Field(
        default=False,
        description="Serve /docs and /openapi.json without an API key (the other routes still need one).",
    )
    drift_window: int = Field(
        default=10_000,
        ge=0,
        description="Scored records kept for the live drift gauges on /metrics (the newest N, tested against "
        "the bundle's training profile like `propensity monitor`); 0 turns them off.",
    )
    drift_refresh: float = Field(
        default=5.0,
        ge=0,
        description="Seconds a computed drift snapshot is reused by /metrics before the window is tested again.",
    )
    store: Path | None = Field(
        default=None,
        description="The live store kept current by `propensity stream` (SQLite, read-only here): "
        "GET /customers/{id} and POST /customers/batch answer from it.",
    )
    events: Path | None = Field(
        default=None,
        description="Without a store: an event log whose customers are scored once at start (at as_of) and "
        "answered by /customers.",
    )
    as_of: str | None = Field(
        default=None, description="With events: the instant to score at (default: the end of the log's data)."
    )
    clv: str | None = Field(
        default=None,
        description="With events: a lifetime-value bundle (`propensity clv`; folder or models:/ URI) whose "
        "P(alive), expected purchases and CLV at the same as-of join each /customers record.",
    )
    supervisor_pid: int | None = Field(
        default=None,
        description="Set by `propensity serve --workers N`: POST /admin/reload then asks the supervisor to "
        "replace every worker (each loads the new model) instead of reloading one worker only.",
    )
