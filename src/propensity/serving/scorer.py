"""A loaded model ready to serve (:class:`Scorer`) and the holder that swaps it on reload.

A request takes the current :class:`Scorer` once and uses it from validation to response,
so a reload (which builds and warms a complete new Scorer before one assignment replaces
the old) never mixes two models in one answer and never fails a request in flight.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from propensity.monitoring.live import LiveDrift
from propensity.pipeline import RecordEncoder, RowPredictor, TrainedModel, band_of
from propensity.serving.metrics import ServiceMetrics
from propensity.serving.problems import ApiError, Problem, safe_value
from propensity.serving.schemas import RequestSchema, feature_warnings
from propensity.serving.settings import ServeSettings

__all__ = ["ModelHolder", "Scorer"]

log = logging.getLogger("propensity.serving")

MAX_PROBLEMS = 50


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[Any]


class Scorer:
    """Validation, encoding, prediction and the decision policy of one model.

    Parameters
    ----------
    model
        The loaded model.
    settings
        Service settings (unknown-category policy, batch limit, threads).
    source
        Where the model came from (a bundle folder or ``models:/`` reference), for /ready.
    """

    def __init__(self, model: TrainedModel, settings: ServeSettings, source: str) -> None:
        self.model = model
        self.manifest = model.manifest
        self.version = model.version
        self.source = source
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.schema = RequestSchema(
            self.manifest,
            unknown_categories=settings.unknown_categories,
            max_batch_records=settings.max_batch_records,
        )
        self.encoder = RecordEncoder(model.pipeline.encoder)
        self.predict_row = RowPredictor(model.pipeline)
        self.pipeline = replace(model.pipeline, n_jobs=settings.threads)
        self.threshold = float(model.threshold)
        bounds = {b.name: b.lower for b in self.manifest.policy.bands}
        self._medium = bounds.get("medium", math.inf)
        self._high = bounds.get("high", math.inf)
        self.max_batch = settings.max_batch_records
        self.has_categories = bool(self.encoder.categorical_levels)
        self._validate_json = self.schema.Record.model_validate_json
        self.live = (
            LiveDrift(self.manifest, size=settings.drift_window, max_age=settings.drift_refresh)
            if settings.drift_window
            else None
        )
        self.metadata = orjson.dumps(self._metadata(settings))
        self.warmed = False

    # ----------------------------------------------------------------- parse

    def parse_one(self, body: bytes) -> BaseModel:
        """Validate one record (a JSON object); raise :class:`ApiError` 400/422 with every problem."""
        try:
            return self._validate_json(body)
        except ValidationError as exc:
            raise self._error(exc) from None

    def parse_batch(
        self, body: bytes, limit: int | None = None, setting: str = "MAX_BATCH_RECORDS"
    ) -> list[BaseModel]:
        """Validate ``{"records": [...]}``: 413 over ``limit`` (default: the batch limit), 422 when empty or any record is invalid."""
        max_batch = limit or self.max_batch
        try:
            records = _Envelope.model_validate_json(body).records
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_url=False):
                if err["type"] == "json_invalid":
                    raise self._error(exc) from None
                loc = ".".join(str(p) for p in err["loc"]) or "body"
                if err["type"] == "model_type":
                    expected, message = (
                        '{"records": [ {...}, ... ]}',
                        "Expected a JSON object with a 'records' array.",
                    )
                elif err["type"] == "extra_forbidden":
                    expected, message = (
                        "only the field 'records'",
                        f"'{loc}' is not a field of a batch request; remove it.",
                    )
                else:
                    expected = f"an array of 1 to {max_batch:,} records"
                    message = str(err["msg"]).rstrip(".") + "."
                kind = "object_type" if err["type"] == "model_type" else err["type"]
                problems.append(Problem(loc, safe_value(err.get("input")), expected, message, kind))
            raise ApiError(422, problems) from None
        n = len(records)
        if n == 0:
            raise ApiError(
                422,
                [
                    Problem(
                        "records",
                        [],
                        f"1 to {max_batch:,} records",
                        "The batch is empty; send at least one record.",
                        "too_short",
                    )
                ],
            )
        if n > max_batch:
            raise ApiError(
                413,
                [
                    Problem(
                        "records",
                        n,
                        f"at most {max_batch:,} records per request",
                        f"The batch has {n:,} records; this service accepts at most {max_batch:,} per request "
                        f"(PROPENSITY_SERVE_{setting}). Split it.",
                        "too_many_records",
                    )
                ],
            )
        validate = self.schema.Record.model_validate
        out: list[BaseModel] = []
        problems = []
        for i, item in enumerate(records):
            try:
                out.append(validate(item))
            except ValidationError as exc:
                problems.extend(self.schema.problems(exc, prefix=f"records[{i}]."))
                if len(problems) >= MAX_PROBLEMS:
                    break
        if problems:
            raise ApiError(422, problems[:MAX_PROBLEMS])
        return out

    def _error(self, exc: ValidationError) -> ApiError:
        problems = self.schema.problems(exc)
        status = 400 if any(p.type == "json_invalid" for p in problems) else 422
        return ApiError(status, problems)

    # ----------------------------------------------------------------- score

    def reasons(self, records: list[BaseModel], k: int) -> list[list[dict[str, Any]]]:
        """The ``k`` strongest reasons per validated record: the very function behind ``score --reasons``."""
        from propensity.explain import reason_codes_for

        typed = pd.DataFrame([self.schema.typed(r) for r in records], columns=self.model.features)
        for spec in self.manifest.input_schema.features:
            col = typed[spec.name]
            if spec.role in ("numeric", "boolean"):
                typed[spec.name] = pd.to_numeric(col, errors="coerce").astype("float64")
            elif spec.role == "datetime":
                typed[spec.name] = pd.to_datetime(col)
            else:
                typed[spec.name] = col.astype(object).where(col.notna(), None)
        return [[asdict(r) for r in row] for row in reason_codes_for(self.model, typed, k)]

    def band(self, p: float) -> str:
        return "high" if p >= self._high else "medium" if p >= self._medium else "low"

    def score_one(self, record: BaseModel) -> dict[str, Any]:
        """The response of /predict for a validated record."""
        typed = self.schema.typed(record)
        p = self.predict_row(self.encoder.encode(typed))
        if self.live is not None:
            self.live.add(typed, p)
        unknown = self.encoder.unknown_categories(typed) if self.has_categories else []
        return {
            "id": self.schema.record_id(record),
            "probability": p,
            "decision": p >= self.threshold,
            "band": self.band(p),
            "threshold": self.threshold,
            "model_version": self.version,
            "warnings": feature_warnings(unknown, typed) if unknown else [],
        }

    def score_many(self, records: list[BaseModel]) -> dict[str, Any]:
        """The response of /predict/batch (without ``server_ms``) for validated records."""
        typed = [self.schema.typed(r) for r in records]
        X = self.encoder.encode_many(typed)
        p = self.pipeline.proba_encoded(X)
        if self.live is not None:
            self.live.add_many(typed, p)
        decisions = p >= self.threshold
        bands = band_of(p, self.manifest.policy)
        unknown_counts: dict[str, int] = {}
        results = []
        record_id = self.schema.record_id
        unknown_of = self.encoder.unknown_categories
        for i, record in enumerate(records):
            unknown = unknown_of(typed[i]) if self.has_categories else []
            for name in unknown:
                unknown_counts[name] = unknown_counts.get(name, 0) + 1
            results.append(
                {
                    "id": record_id(record),
                    "probability": float(p[i]),
                    "decision": bool(decisions[i]),
                    "band": bands[i],
                    "warnings": feature_warnings(unknown, typed[i]) if unknown else [],
                }
            )
        names, counts = np.unique(bands, return_counts=True)
        return {
            "model_version": self.version,
            "threshold": self.threshold,
            "counts": {
                "records": len(records),
                "contact": int(decisions.sum()),
                "bands": {str(k): int(v) for k, v in zip(names, counts, strict=True)},
                "unknown_categories": unknown_counts,
            },
            "results": results,
        }

    def warm_up(self) -> None:
        """Score the example record (single and batch path) so the first request pays no set-up cost."""
        example = self.schema.Record.model_validate(self.schema.example)
        for _ in range(3):
            self.score_one(example)
        self.score_many([example, example])
        if self.live is not None:
            self.live.clear()  # the example is not traffic
        self.warmed = True

    def _metadata(self, settings: ServeSettings) -> dict[str, Any]:
        m = self.manifest
        return {
            "model_version": m.model_version,
            "name": m.name,
            "winner": m.winner,
            "task": m.task.model_dump(mode="json"),
            "input_schema": m.input_schema.model_dump(mode="json"),
            "request": {
                "id_field": self.schema.id_field,
                "example": self.schema.example,
                "unknown_categories": settings.unknown_categories,
                "max_batch_records": settings.max_batch_records,
            },
            "policy": m.policy.model_dump(mode="json"),
            "calibration": m.calibration.method,
            "metrics": m.metrics,
            "provenance": m.provenance.model_dump(mode="json"),
            "source": self.source,
            "loaded_at": self.loaded_at,
        }


class ModelHolder:
    """The current :class:`Scorer` and how to replace it.

    Parameters
    ----------
    source
        A bundle folder, a ``models:/name@alias`` (or ``/version``) reference, or a loaded model.
        A reload reads the folder again, or re-resolves the reference (so ``@champion`` picks up
        a new champion); an in-memory model without a saved path cannot be reloaded.
    """

    def __init__(
        self, source: str | Path | TrainedModel, settings: ServeSettings, metrics: ServiceMetrics
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        if isinstance(source, TrainedModel):
            self.ref: str | None = str(source.path) if source.path is not None else None
            model = source
        else:
            self.ref = str(source)
            model = self._resolve(self.ref)
        self.scorer = Scorer(model, settings, source=self.ref or "(in-memory model)")
        self._lock: asyncio.Lock | None = None
        metrics.set_model(model.version, model.manifest.winner, model.manifest.task.target)

    @staticmethod
    def _resolve(ref: str) -> TrainedModel:
        from propensity.loading import resolve_model

        return resolve_model(ref)

    @property
    def ready(self) -> bool:
        return self.scorer.warmed

    def warm_up(self) -> None:
        self.scorer.warm_up()

    def _load(self, ref: str) -> Scorer:
        scorer = Scorer(self._resolve(ref), self.settings, source=ref)
        scorer.warm_up()
        return scorer

    async def reload(self) -> dict[str, Any]:
        """Load the model again from its source and swap it in; the old one keeps serving until then.

        Raises
        ------
        ApiError
            409 when there is nothing to reload from or the new model fails to load/verify
            (the service keeps serving the previous version).
        """
        if self.ref is None:
            raise ApiError(
                409,
                [
                    Problem(
                        "model",
                        None,
                        "a service started from a bundle folder or models:/ reference",
                        "This service was started with an in-memory model that has no bundle folder; nothing to reload.",
                        "not_reloadable",
                    )
                ],
            )
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            start = time.perf_counter()
            old = self.scorer
            try:
                new = await anyio.to_thread.run_sync(self._load, self.ref)
            except Exception as exc:  # keep serving; say why without a trace
                self.metrics.reloads.labels("failed").inc()
                log.error(
                    "model reload from %s failed; still serving %s", self.ref, old.version, exc_info=exc
                )
                raise ApiError(
                    409,
                    [
                        Problem(
                            "model",
                            self.ref,
                            "a model bundle that loads and passes verification",
                            f"Reload failed, still serving version {old.version}: {_one_line(exc)}",
                            "reload_failed",
                        )
                    ],
                ) from None
            changed = new.version != old.version
            if changed:
                self.scorer = new  # the swap: one reference assignment
                self.metrics.set_model(new.version, new.manifest.winner, new.manifest.task.target)
            self.metrics.reloads.labels("changed" if changed else "unchanged").inc()
            result: dict[str, Any] = {
                "changed": changed,
                "previous_version": old.version,
                "model_version": self.scorer.version,
                "source": self.ref,
                "seconds": round(time.perf_counter() - start, 3),
                "workers": None,
            }
            supervisor = self.settings.supervisor_pid
            if supervisor and changed:
                # Every worker must load it: uvicorn's supervisor replaces workers one by one on SIGHUP,
                # each new one ready before the old one stops.
                os.kill(supervisor, signal.SIGHUP)
                result["workers"] = "every worker is being replaced and loads the new version"
            log.info("model reload from %s: %s -> %s", self.ref, old.version, self.scorer.version)
            return result


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]
