"""The public Python API; the CLI is a thin wrapper over these functions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from propensity.bundle import load_model, save_model
from propensity.errors import DataError
from propensity.pipeline import TrainedModel
from propensity.schema import Quarantine, load_roles_file
from propensity.sources import TableWriter, file_sha256, frame_sha256, iter_table, read_table, table_format
from propensity.training.policy import PolicyKind, PolicySpec
from propensity.training.trainer import ProgressEvent, TrainConfig, fit

__all__ = ["ScoreSummary", "resolve_model", "score_file", "train", "write_training_outputs"]

DataLike = pd.DataFrame | str | Path


def _load(data: DataLike, what: str) -> tuple[pd.DataFrame, str, str]:
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise DataError(f"The {what} DataFrame has no rows.")
        return data, "DataFrame", frame_sha256(data)
    path = Path(data)
    frame = read_table(path)
    return frame, str(path), file_sha256(path)


def train(
    data: DataLike,
    target: str,
    *,
    out: str | Path | None = None,
    test: DataLike | None = None,
    id_column: str | None = None,
    roles: Mapping[str, str] | str | Path | None = None,
    positive: str | None = None,
    test_size: float = 0.2,
    folds: int = 5,
    metric: str = "pr_auc",
    policy: str | PolicySpec = "f1",
    value: float | None = None,
    cost: float | None = None,
    fraction: float | None = None,
    min_score: float | None = None,
    time_budget: float = 0.0,
    trials: int = 0,
    candidates: Sequence[str] | None = None,
    class_weight: str = "auto",
    resample: str = "none",
    seed: int = 42,
    n_jobs: int | None = None,
    descriptions: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    time_column: str | None = None,
    time_gap: Any = None,
    time_folds: int = 1,
    label_definition: str | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> TrainedModel:
    """Train a calibrated propensity model on a labelled table.

    Parameters
    ----------
    data
        A DataFrame or a CSV/Parquet path; one row per customer or session.
    target
        The outcome column (0/1, true/false, yes/no or any two values).
    out
        Folder for the bundle (``manifest.json``, ``model.joblib``) and ``metrics.json``,
        ``quarantine.csv``. Nothing is written when ``None``.
    test
        A separate test table; otherwise a stratified ``test_size`` share is held out.
    id_column, roles, positive
        Column-role controls; ``roles`` is a mapping or a YAML file (see :func:`propensity.schema.load_roles_file`).
    folds, metric, time_budget, trials, candidates, class_weight, resample, seed, n_jobs
        See :class:`~propensity.training.trainer.TrainConfig`.
    policy, value, cost, fraction, min_score
        Decision policy: ``f1``; ``profit`` with ``value`` and ``cost``; ``top`` with ``fraction``;
        ``precision`` or ``recall`` with ``min_score``.
    descriptions, units
        ``{feature: text}`` stored with each feature in the manifest (reason codes read them).
    time_column, time_gap, time_folds
        For stacked snapshots (a row per customer and cutoff): time-ordered validation and test
        instead of random folds; see :class:`~propensity.training.trainer.TrainConfig`.
    label_definition
        How the target was derived (stored in the manifest's task).

    Returns
    -------
    TrainedModel
        Call ``predict_proba``/``decide`` on new rows; ``model.manifest`` holds everything learned.

    Raises
    ------
    DataError, SchemaError, InsufficientDataError
        For unusable input, with a message naming the problem and the fix.

    Example
    -------
    >>> model = propensity.train("shoppers.csv.gz", target="Revenue", out="models/shoppers")  # doctest: +SKIP
    """
    frame, source, digest = _load(data, "training")
    overrides: dict[str, str] = {}
    if isinstance(roles, (str, Path)):
        parsed, roles_id = load_roles_file(roles)
        overrides = {k: str(v) for k, v in parsed.items()}
        id_column = id_column or roles_id
    elif roles:
        overrides = dict(roles)
    spec = (
        policy
        if isinstance(policy, PolicySpec)
        else PolicySpec(
            kind=cast(PolicyKind, policy),
            value=value,
            cost=cost,
            fraction=fraction,
            min=min_score,
        )
    )
    config = TrainConfig(
        target=target,
        id_column=id_column,
        roles=overrides,
        positive=positive,
        test_size=test_size,
        folds=folds,
        metric=metric,
        policy=spec,
        time_budget=time_budget,
        trials=trials,
        candidates=candidates,
        class_weight=class_weight,
        resample=resample,
        seed=seed,
        n_jobs=n_jobs,
        time_column=time_column,
        time_gap=time_gap,
        time_folds=time_folds,
    )
    test_frame = _load(test, "test")[0] if test is not None else None
    if test is not None and not isinstance(test, pd.DataFrame):
        source += f" (test: {test})"
    model = fit(
        frame,
        config,
        test_frame=test_frame,
        data_source=source,
        data_hash=digest,
        descriptions=descriptions,
        units=units,
        label_definition=label_definition,
        progress=progress,
    )
    if out is not None:
        save_model(model, out)
        write_training_outputs(model, Path(out))
    return model


def write_training_outputs(model: TrainedModel, out: Path) -> dict[str, Path]:
    """Write ``metrics.json`` and ``quarantine.csv`` beside a saved bundle."""
    run = getattr(model, "run", None)
    paths = {"bundle": out, "manifest": out / "manifest.json"}
    if run is not None:
        paths["quarantine"] = run.quarantine.write(out / "quarantine.csv")
        if run.test_quarantine is not None and run.test_quarantine.n_bad_rows:
            paths["test_quarantine"] = run.test_quarantine.write(out / "quarantine_test.csv")
    m = model.manifest
    summary = {
        "model_version": m.model_version,
        "winner": m.winner,
        "target": m.task.model_dump(),
        "threshold": m.policy.threshold,
        "policy": m.policy.model_dump(),
        "metrics": m.metrics,
        "calibration": m.calibration.model_dump(),
        "candidates": [c.model_dump() for c in m.candidates],
        "rows": {
            "in": m.provenance.rows_in,
            "quarantined": m.provenance.rows_quarantined,
            "train": m.provenance.rows_train,
            "test": m.provenance.rows_test,
        },
        "quarantine_reasons": m.provenance.quarantine_reasons,
        "timings_seconds": run.timings if run is not None else {},
        "tuning": run.tuning if run is not None else None,
        "paths": {k: str(v) for k, v in paths.items()},
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    paths["metrics"] = out / "metrics.json"
    return paths


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def resolve_model(ref: str | Path | TrainedModel) -> TrainedModel:
    """Load a model from a bundle folder or a registry URI (``models:/name/3``, ``models:/name@alias``)."""
    if isinstance(ref, TrainedModel):
        return ref
    text = str(ref)
    if text.startswith("models:/"):
        from propensity.tracking import load_registered_model

        return load_registered_model(text)
    return load_model(Path(text))


@dataclass
class ScoreSummary:
    """What a batch-scoring run did."""

    input: str
    output: str
    quarantine: str | None
    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    contacted: int = 0
    bands: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    unknown_categories: dict[str, int] = field(default_factory=dict)
    missing_optional: list[str] = field(default_factory=list)
    model_version: str = ""
    threshold: float = 0.0
    seconds: float = 0.0
    rows_per_second: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_file(
    model: str | Path | TrainedModel,
    input: str | Path,
    out: str | Path,
    *,
    batch_rows: int = 200_000,
    allow_missing: bool = False,
    quarantine_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreSummary:
    """Score a CSV/Parquet file chunk by chunk (memory stays flat) and write CSV/Parquet.

    Output columns: the id column (or ``row``), ``probability``, ``decision``, ``band``,
    ``model_version``, ``scored_at``. Invalid rows go to ``quarantine_path`` (default:
    ``<out>.quarantine.csv``) with row, column, value and reason; a JSON summary is written
    to ``<out>.summary.json``.

    Raises
    ------
    SchemaError
        If the input lacks a required column (named in the message).
    """
    model = resolve_model(model)
    input, out = Path(input), Path(out)
    table_format(out)  # fail on an unsupported output suffix before doing any work
    stem = out.name.split(".")[0]
    quarantine_path = Path(quarantine_path) if quarantine_path else out.with_name(f"{stem}.quarantine.csv")
    wanted = [*model.features]
    if model.id_column:
        wanted.append(model.id_column)
    start = time.perf_counter()
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    summary = ScoreSummary(
        input=str(input),
        output=str(out),
        quarantine=None,
        model_version=model.version,
        threshold=model.threshold,
    )
    all_bad = Quarantine(0)
    offset = 0
    bands: dict[str, int] = {}
    total = _row_count(input)
    with TableWriter(out) as writer:
        for chunk in iter_table(input, batch_rows=batch_rows, columns=wanted, string_columns=model.features):
            scores, prepared = model.score_frame(
                chunk, row_offset=offset, allow_missing=allow_missing, scored_at=scored_at
            )
            writer.write(scores)
            all_bad.extend(prepared.quarantine)
            offset += len(chunk)
            summary.rows_scored += len(scores)
            summary.rows_quarantined += prepared.quarantine.n_bad_rows
            summary.contacted += int(scores["decision"].sum())
            for name, count in scores["band"].value_counts().items():
                bands[str(name)] = bands.get(str(name), 0) + int(count)
            for col, n in prepared.unknown_categories.items():
                summary.unknown_categories[col] = summary.unknown_categories.get(col, 0) + n
            summary.missing_optional = prepared.missing_optional
            if progress is not None:
                progress(offset, total)
    summary.rows_in = offset
    summary.bands = bands
    summary.quarantine_reasons = all_bad.counts_by_reason()
    if summary.rows_quarantined:
        all_bad.write(quarantine_path)
        summary.quarantine = str(quarantine_path)
    summary.seconds = round(time.perf_counter() - start, 3)
    summary.rows_per_second = round(summary.rows_in / summary.seconds, 1) if summary.seconds else 0.0
    out.with_name(f"{stem}.summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    return summary


def _row_count(path: Path) -> int:
    """Rows in a Parquet file (cheap, from metadata); 0 (unknown) for text files."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return 0
