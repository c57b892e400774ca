"""The public Python API; the CLI is a thin wrapper over these functions."""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from propensity.bundle import load_model, save_model
from propensity.config import get_settings
from propensity.errors import DataError, ParameterError, PropensityError, PropensityWarning
from propensity.pipeline import BAND_NAMES, FAST_PREDICT_ROWS, TrainedModel, band_codes, preload_batch_kernel
from propensity.schema import Quarantine, load_roles_file
from propensity.sources import (
    TableWriter,
    file_sha256,
    frame_sha256,
    iter_table,
    prefetched,
    read_table,
    table_format,
)

if TYPE_CHECKING:  # training is imported when train() runs, so scoring and serving never load it
    from propensity.training.policy import PolicySpec
    from propensity.training.trainer import ProgressEvent

__all__ = [
    "ScoreSummary",
    "resolve_model",
    "score_file",
    "track_saved_model",
    "train",
    "write_training_outputs",
]

log = logging.getLogger(__name__)

DataLike = pd.DataFrame | str | Path

log = logging.getLogger(__name__)


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
    screen_above: int = 100_000,
    descriptions: Mapping[str, str] | None = None,
    name: str | None = None,
    tracking: bool | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
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
    folds, metric, time_budget, trials, candidates, class_weight, resample, seed, n_jobs, screen_above
        See :class:`~propensity.training.trainer.TrainConfig`.
    policy, value, cost, fraction, min_score
        Decision policy: ``f1``; ``profit`` with ``value`` and ``cost``; ``top`` with ``fraction``;
        ``precision`` or ``recall`` with ``min_score``.
    name
        Registered-model name (default: the name of the ``out`` folder); also stored as
        ``manifest.name``.
    tracking
        Record the run in MLflow and register the bundle (default: ``PROPENSITY_TRACKING``,
        true; a ``tracking_uri`` turns it on). Needs ``out``: the bundle is always written first, and a tracking failure never
        loses it — it becomes a :class:`~propensity.errors.PropensityWarning`, ``model.tracking``
        says what happened and how to register the bundle later, and ``<out>/tracking.json``
        records it for scripts.
    tracking_uri
        MLflow store (default: ``PROPENSITY_TRACKING_URI``, ``MLFLOW_TRACKING_URI``, else the
        embedded ``.propensity/mlflow.db``); see :mod:`propensity.tracking`.
    experiment
        MLflow experiment (default: the model name).
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
        Call ``predict_proba``/``decide`` on new rows; ``model.manifest`` holds everything learned;
        ``model.tracking`` is a :class:`~propensity.tracking.TrackingResult` (registered as
        ``model.tracking.model_uri``), a :class:`~propensity.tracking.TrackingFailure`, or
        ``None`` when tracking was off.

    Raises
    ------
    DataError, SchemaError, InsufficientDataError
        For unusable input, with a message naming the problem and the fix.
    ParameterError
        For an out-of-range setting, or a ``name`` MLflow cannot register.

    Example
    -------
    >>> model = propensity.train("shoppers.csv.gz", target="Revenue", out="models/shoppers")  # doctest: +SKIP
    """
    if name is not None:
        from propensity.tracking import validate_model_name

        validate_model_name(name)  # before hours of training, not after
    from propensity.training.policy import PolicyKind, PolicySpec
    from propensity.training.trainer import ProgressEvent, TrainConfig, fit

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
        screen_above=screen_above,
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
    model.tracking = None  # type: ignore[attr-defined]
    if out is not None:
        save_and_track(
            model,
            Path(out),
            name=name,
            tracking=tracking,
            tracking_uri=tracking_uri,
            experiment=experiment,
            train_params=asdict(config),
            on_tracking=(lambda done: progress(ProgressEvent("tracking", done, 1, "MLflow")))
            if progress
            else None,
        )
    return model


def save_and_track(
    model: TrainedModel,
    out: Path,
    *,
    name: str | None = None,
    tracking: bool | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    train_params: Mapping[str, Any] | None = None,
    on_tracking: Callable[[int], None] | None = None,
) -> dict[str, Path]:
    """Name the model, write the bundle and its outputs, then record it in MLflow (when enabled).

    The one ending of every training entry point (:func:`train`, event training): the bundle is
    always written before tracking is tried, and ``model.tracking`` says what happened.
    """
    from propensity.tracking import default_model_name, git_state

    model.manifest.name = name or default_model_name(out)
    model.manifest.provenance.git_commit = git_state()[0]
    save_model(model, out)
    paths = write_training_outputs(model, out)
    model.tracking = None  # type: ignore[attr-defined]
    # An explicit tracking URI asks for tracking even where PROPENSITY_TRACKING=false.
    enabled = tracking if tracking is not None else (tracking_uri is not None or get_settings().tracking)
    if enabled:
        if on_tracking is not None:
            on_tracking(0)
        model.tracking = track_saved_model(  # type: ignore[attr-defined]
            model, out, tracking_uri=tracking_uri, experiment=experiment, train_params=train_params
        )
        if on_tracking is not None:
            on_tracking(1)
    return paths


def track_saved_model(
    model: TrainedModel,
    out: Path,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    train_params: Mapping[str, Any] | None = None,
) -> Any:
    """Log a just-saved bundle to MLflow; on failure warn and say how to register it later.

    Returns a :class:`~propensity.tracking.TrackingResult` or a
    :class:`~propensity.tracking.TrackingFailure` and writes it to ``<out>/tracking.json``.
    """
    from propensity.tracking import (
        TRACKING_FILE,
        TrackingFailure,
        display_uri,
        log_training,
        resolve_tracking_uri,
    )

    name = model.manifest.name
    outcome: Any
    try:
        outcome = log_training(
            model, out, name=name, tracking_uri=tracking_uri, experiment=experiment, train_params=train_params
        )
    except Exception as exc:  # tracking must never cost the user a trained model
        log.debug("tracking failed", exc_info=True)
        try:
            uri = display_uri(resolve_tracking_uri(tracking_uri))
        except Exception:
            uri = "?"
        command = f"propensity models register {shlex.quote(str(out))} --name {shlex.quote(str(name))}"
        if tracking_uri:  # environment settings apply again by themselves; credentials are never echoed
            command += f" --tracking-uri {shlex.quote(display_uri(tracking_uri))}"
        reason = str(exc) if isinstance(exc, PropensityError) else f"{type(exc).__name__}: {exc}"
        outcome = TrackingFailure(tracking_uri=uri, error=reason, bundle=str(out), register_command=command)
        warnings.warn(
            f"The model is saved in {out}, but it was not recorded in MLflow: {reason} "
            f"Register it later with: {command}",
            PropensityWarning,
            stacklevel=3,
        )
    (out / TRACKING_FILE).write_text(json.dumps(outcome.to_dict(), indent=2, default=str))
    return outcome


def write_training_outputs(model: TrainedModel, out: Path) -> dict[str, Path]:
    """Write ``metrics.json``, ``quarantine.csv``, ``evaluation.json`` and ``report.html`` beside a saved bundle.

    The report needs the ``explain`` extra (plotly, SHAP for forests); without it the
    evaluation is still written and the report is skipped with a warning.
    """
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
    if run is not None:
        paths.update(_write_evaluation_and_report(model, out))
        summary["paths"] = {k: str(v) for k, v in paths.items()}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    paths["metrics"] = out / "metrics.json"
    return paths


def _write_evaluation_and_report(model: TrainedModel, out: Path) -> dict[str, Path]:
    from propensity.evaluation import evaluate_training, write_evaluation

    evaluation = evaluate_training(model)
    paths = {"evaluation": write_evaluation(evaluation, out / "evaluation.json")}
    try:
        from propensity.report import write_report

        paths["report"] = write_report(evaluation, out / "report.html")
    except ImportError as exc:
        log.warning("report.html not written: %s", exc)
    return paths


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def resolve_model(ref: str | Path | TrainedModel, *, tracking_uri: str | None = None) -> TrainedModel:
    """Load a model from a bundle folder or a registry URI (``models:/name/3``, ``models:/name@alias``).

    Registry URIs are looked up in ``tracking_uri`` (default: ``PROPENSITY_TRACKING_URI``,
    ``MLFLOW_TRACKING_URI``, else the embedded store); see
    :func:`propensity.tracking.load_registered_model`.
    """
    if isinstance(ref, TrainedModel):
        return ref
    text = str(ref)
    if text.startswith("models:/"):
        from propensity.tracking import load_registered_model

        return load_registered_model(text, tracking_uri=tracking_uri)
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
    reasons: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreSummary:
    """Score a CSV/Parquet file chunk by chunk (memory stays flat) and write CSV/Parquet.

    Output columns: the id column (or ``row``), ``probability``, ``decision``, ``band``,
    ``model_version``, ``scored_at``; with ``reasons=K`` also ``reason_1`` … ``reason_K``, the
    K strongest contributions as text (see :func:`propensity.explain.reason_codes`). Invalid rows go to ``quarantine_path`` (default:
    ``<out>.quarantine.csv``) with row, column, value and reason; a JSON summary is written
    to ``<out>.summary.json``.

    Raises
    ------
    SchemaError
        If the input lacks a required column (named in the message).
    """
    if not isinstance(reasons, int) or not 0 <= reasons <= 20:
        raise ParameterError(
            f"The 'reasons' parameter of score_file must be an int in [0, 20]. Got {reasons!r} instead."
        )
    input, out = Path(input), Path(out)
    try:
        counted: int | None = _row_count(input)
    except Exception:  # an unreadable input is reported below, after the model and output checks
        counted = None
    batch_kernel = not counted or counted >= FAST_PREDICT_ROWS  # unknown (CSV) or large
    if batch_kernel:  # the tree kernel loads while the bundle does
        preload_batch_kernel()
    model = resolve_model(model)
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
    total = counted if counted is not None else _row_count(input)
    forest_paths: bool | None = None
    if batch_kernel:  # build the model's tree walker while the first chunk is read
        threading.Thread(target=model.pipeline.warm_up, name="propensity-warm-up", daemon=True).start()
    with TableWriter(out) as writer:
        categorical = [f.name for f in model.manifest.input_schema.features if f.role == "categorical"]
        chunks = prefetched(
            iter_table(
                input,
                batch_rows=batch_rows,
                columns=wanted,
                string_columns=[c for c in model.features if c not in categorical],
                dictionary_columns=categorical,
            )
        )
        for chunk in chunks:
            scores, prepared = model.score_frame(
                chunk, row_offset=offset, allow_missing=allow_missing, scored_at=scored_at
            )
            if reasons:
                from propensity.explain import FAST_TREESHAP_ROWS, forest_path_attribution, reason_columns

                good = prepared.features if prepared.good.all() else prepared.features[prepared.good]
                if offset == 0:
                    _warn_if_explaining_is_slow(model, good, total or len(chunk))
                    # one method for the whole file (by its size, or the first chunk's for CSV)
                    forest_paths = (total or len(chunk)) >= FAST_TREESHAP_ROWS
                with forest_path_attribution(forest_paths):
                    explained = reason_columns(model, good, reasons)
                scores = pd.concat([scores, explained], axis=1)
            compact = _few_valued_as_categorical(scores, model)
            writer.write(compact)
            all_bad.extend(prepared.quarantine)
            offset += len(chunk)
            summary.rows_scored += len(scores)
            summary.rows_quarantined += prepared.quarantine.n_bad_rows
            summary.contacted += int(scores["decision"].sum())
            for name, count in compact["band"].value_counts().items():
                if count:
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


def _few_valued_as_categorical(scores: pd.DataFrame, model: TrainedModel) -> pd.DataFrame:
    """Band, model version and time as ``Categorical``: Arrow converts three values, not a string per row."""
    n = len(scores)
    out = scores.copy(deep=False)
    codes = band_codes(scores["probability"].to_numpy(), model.manifest.policy)
    out["band"] = pd.Categorical.from_codes(codes, categories=pd.Index(BAND_NAMES))
    for col in ("model_version", "scored_at"):
        if n:
            out[col] = pd.Categorical.from_codes(
                np.zeros(n, dtype=np.int8), categories=pd.Index([str(scores[col].iloc[0])])
            )
    return out


def _warn_if_explaining_is_slow(model: TrainedModel, typed: pd.DataFrame, rows: int) -> None:
    """Time the explanation of a few rows; warn up front when the whole file would take minutes.

    Exact SHAP is fast for boosted trees and linear models (>10,000 rows/s) but can be very slow
    for deep random-forest trees; a user should learn that before the run, not hours into it.
    """
    from propensity.explain import FAST_TREESHAP_ROWS, explain_features

    sample = typed.head(10)
    if len(sample) == 0:
        return
    if model.pipeline.family == "random_forest" and rows >= FAST_TREESHAP_ROWS:
        warnings.warn(
            f"Reasons of this random forest for batches of {FAST_TREESHAP_ROWS:,}+ rows come from path "
            "attribution (Saabas), a fast approximation of SHAP (exact SHAP on deep forest trees runs at tens "
            "of rows/s); it usually names the same strongest reason.",
            PropensityWarning,
            stacklevel=3,
        )
        return
    start = time.perf_counter()
    explain_features(model, sample)
    rate = len(sample) / max(time.perf_counter() - start, 1e-9)
    seconds = rows / rate
    if seconds > 120:
        warnings.warn(
            f"Explaining this {model.manifest.winner} model runs at about {rate:,.0f} rows/s, so reasons for "
            f"{rows:,} rows will take about {seconds / 60:,.0f} min. Boosted-tree and linear models explain "
            "over 10,000 rows/s: retrain with --candidates lightgbm,logistic_regression, or score without --reasons.",
            PropensityWarning,
            stacklevel=3,
        )


def _row_count(path: Path) -> int:
    """Rows in a Parquet file (cheap, from metadata); 0 (unknown) for text files."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return 0
