"""Training from a labelled table, and what every training ends with: bundle, outputs, MLflow.

:func:`train` is the whole job behind ``propensity train TABLE``; :func:`save_and_track` is the
one ending shared with event training (:func:`propensity.workflows.events.train_from_events`):
the bundle is always written before tracking is tried, and a tracking failure never costs the
user a trained model.
"""

from __future__ import annotations

import json
import logging
import shlex
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from propensity.bundle import save_model
from propensity.config import get_settings
from propensity.errors import DataError, PropensityError, PropensityWarning
from propensity.pipeline import TrainedModel
from propensity.schema import load_roles_file
from propensity.sources import check_output, file_sha256, frame_sha256, read_table, write_json

if TYPE_CHECKING:  # training is imported when train() runs, so scoring and serving never load it
    from propensity.events.validate import ValidationReport
    from propensity.features.labels import TrainingSet
    from propensity.tracking import TrackingFailure, TrackingResult
    from propensity.training.policy import PolicySpec
    from propensity.training.trainer import ProgressEvent, TrainConfig, TrainingRun

__all__ = [
    "DataLike",
    "TrainingResult",
    "save_and_track",
    "track_saved_model",
    "train",
    "write_training_outputs",
]

log = logging.getLogger(__name__)

DataLike = pd.DataFrame | str | Path


@dataclass
class TrainingResult:
    """What a training job produced.

    Attributes
    ----------
    model
        The calibrated model: ``predict_proba``/``decide`` on new rows; ``model.manifest`` holds
        everything learned (the same object the bundle stores).
    run
        The in-memory figures of training (out-of-fold and test predictions, candidates,
        calibration choices, timings) that the evaluation report is built from.
    paths
        What was written (``bundle``, ``manifest``, ``metrics``, ``report`` ...); empty without ``out``.
    tracking
        A :class:`~propensity.tracking.TrackingResult` (registered as ``tracking.model_uri``), a
        :class:`~propensity.tracking.TrackingFailure`, or ``None`` when tracking was off.
    training_set, validation
        Event training only: the stacked snapshots and the event log's validation report.
    """

    model: TrainedModel
    run: TrainingRun
    paths: dict[str, Path] = field(default_factory=dict)
    tracking: TrackingResult | TrackingFailure | None = None
    training_set: TrainingSet | None = None
    validation: ValidationReport | None = None


def _load(data: DataLike, what: str) -> tuple[pd.DataFrame, str, str]:
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise DataError(f"The {what} DataFrame has no rows.")
        return data, "DataFrame", frame_sha256(data)
    path = Path(data)
    frame = read_table(path)
    return frame, str(path), file_sha256(path)


def _role_overrides(
    roles: Mapping[str, str] | str | Path | None, id_column: str | None
) -> tuple[dict[str, str], str | None]:
    """Role overrides from a mapping or a roles YAML file (which may also name the id column)."""
    if isinstance(roles, (str, Path)):
        parsed, roles_id = load_roles_file(roles)
        return {k: str(v) for k, v in parsed.items()}, id_column or roles_id
    return dict(roles or {}), id_column


def _policy_spec(
    policy: str | PolicySpec,
    value: float | None,
    cost: float | None,
    fraction: float | None,
    min_score: float | None,
) -> PolicySpec:
    from propensity.training.policy import PolicyKind, PolicySpec

    if isinstance(policy, PolicySpec):
        return policy
    return PolicySpec(kind=cast(PolicyKind, policy), value=value, cost=cost, fraction=fraction, min=min_score)


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
    metric: str = "roc_auc",
    policy: str | PolicySpec = "f1",
    value: float | None = None,
    cost: float | None = None,
    fraction: float | None = None,
    min_score: float | None = None,
    time_budget: float = 0.0,
    trials: int = 0,
    candidates: Sequence[str] | None = None,
    ensemble: bool = True,
    class_weight: str = "auto",
    resample: str = "none",
    seed: int = 42,
    n_jobs: int | None = None,
    screen_above: int = 100_000,
    refit_all: bool | None = None,
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
) -> TrainingResult:
    """Train a calibrated propensity model on a labelled table.

    Parameters
    ----------
    data
        A DataFrame or a CSV/Parquet path; one row per customer or session.
    target
        The outcome column (0/1, true/false, yes/no or any two values).
    out
        Folder for the bundle (``manifest.json``, ``model.joblib``) and ``metrics.json``,
        ``quarantine.csv``, ``evaluation.json``, ``report.html``. Nothing is written when ``None``.
    test
        A separate test table; otherwise a stratified ``test_size`` share is held out.
    id_column, roles, positive
        Column-role controls; ``roles`` is a mapping or a YAML file (see :func:`propensity.schema.load_roles_file`).
    folds, metric, time_budget, trials, candidates, ensemble, class_weight, resample, seed, n_jobs, screen_above
        See :class:`~propensity.training.trainer.TrainConfig`.
    refit_all
        Refit the shipped model on the training and test rows once the test figures are recorded
        (``None``: up to 200,000 rows, and not on a given ``test`` table); see
        :class:`~propensity.training.trainer.TrainConfig`.
    policy, value, cost, fraction, min_score
        Decision policy: ``f1``; ``profit`` with ``value`` and ``cost``; ``top`` with ``fraction``;
        ``precision`` or ``recall`` with ``min_score``.
    name
        Registered-model name (default: the name of the ``out`` folder); also stored as
        ``manifest.name``.
    tracking
        Record the run in MLflow and register the bundle (default: ``PROPENSITY_TRACKING``,
        true; a ``tracking_uri`` turns it on). Needs ``out``: the bundle is always written first,
        and a tracking failure never loses it — it becomes a
        :class:`~propensity.errors.PropensityWarning`, ``result.tracking`` says what happened and
        how to register the bundle later, and ``<out>/tracking.json`` records it for scripts.
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
    TrainingResult
        ``result.model`` scores new rows; ``result.tracking`` and ``result.paths`` say what was
        recorded and written.

    Raises
    ------
    DataError, SchemaError, InsufficientDataError
        For unusable input, with a message naming the problem and the fix.
    ParameterError
        For an out-of-range setting, or a ``name`` MLflow cannot register.

    Example
    -------
    >>> result = propensity.train("shoppers.csv.gz", target="Revenue", out="models/shoppers")  # doctest: +SKIP
    >>> result.model.decide(new_rows)  # doctest: +SKIP
    """
    if name is not None:
        from propensity.tracking import validate_model_name

        validate_model_name(name)  # before hours of training, not after
    from propensity.training.trainer import ProgressEvent, TrainConfig, fit

    if out is not None:  # before any input is read, not after the training
        inputs = [x for x in (data, test) if not isinstance(x, pd.DataFrame)]
        check_output(out, inputs=inputs, what="output folder", folder=True)
    frame, source, digest = _load(data, "training")
    overrides, id_column = _role_overrides(roles, id_column)
    config = TrainConfig(
        target=target,
        id_column=id_column,
        roles=overrides,
        positive=positive,
        test_size=test_size,
        folds=folds,
        metric=metric,
        policy=_policy_spec(policy, value, cost, fraction, min_score),
        time_budget=time_budget,
        trials=trials,
        candidates=candidates,
        ensemble=ensemble,
        class_weight=class_weight,
        resample=resample,
        seed=seed,
        n_jobs=n_jobs,
        screen_above=screen_above,
        refit_all=refit_all,
        time_column=time_column,
        time_gap=time_gap,
        time_folds=time_folds,
    )
    test_frame = _load(test, "test")[0] if test is not None else None
    if test is not None and not isinstance(test, pd.DataFrame):
        source += f" (test: {test})"
    fitted = fit(
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
    result = TrainingResult(fitted.model, fitted.run)
    if out is None:
        return result
    on_tracking = (lambda done: progress(ProgressEvent("tracking", done, 1, "MLflow"))) if progress else None
    return save_and_track(
        result,
        Path(out),
        name=name,
        tracking=tracking,
        tracking_uri=tracking_uri,
        experiment=experiment,
        train_params=train_params(config),
        on_tracking=on_tracking,
    )


def train_params(config: TrainConfig) -> dict[str, Any]:
    """The training settings as MLflow run parameters."""
    return asdict(config)


def save_and_track(
    result: TrainingResult,
    out: Path,
    *,
    name: str | None = None,
    tracking: bool | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    train_params: Mapping[str, Any] | None = None,
    on_tracking: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Name the model, write the bundle and its outputs, then record it in MLflow (when enabled).

    The one ending of every training entry point (:func:`train`, event training); returns
    ``result`` with ``paths`` and ``tracking`` filled in.
    """
    from propensity.tracking import default_model_name, git_state

    model = result.model
    model.manifest.name = name or default_model_name(out)
    model.manifest.provenance.git_commit = git_state()[0]
    save_model(model, out)
    result.paths.update(write_training_outputs(result, out))
    # An explicit tracking URI asks for tracking even where PROPENSITY_TRACKING=false.
    enabled = tracking if tracking is not None else (tracking_uri is not None or get_settings().tracking)
    if enabled:
        if on_tracking is not None:
            on_tracking(0)
        result.tracking = track_saved_model(
            result, out, tracking_uri=tracking_uri, experiment=experiment, train_params=train_params
        )
        if on_tracking is not None:
            on_tracking(1)
    return result


def track_saved_model(
    result: TrainingResult,
    out: Path,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    train_params: Mapping[str, Any] | None = None,
) -> TrackingResult | TrackingFailure:
    """Log a just-saved bundle to MLflow; on failure warn and say how to register it later.

    Returns a :class:`~propensity.tracking.TrackingResult` or a
    :class:`~propensity.tracking.TrackingFailure` and writes it to ``<out>/tracking.json``.
    """
    from propensity.tracking import TRACKING_FILE, log_training

    name = result.model.manifest.name
    outcome: TrackingResult | TrackingFailure
    try:
        outcome = log_training(
            result.model,
            out,
            run=result.run,
            name=name,
            tracking_uri=tracking_uri,
            experiment=experiment,
            train_params=train_params,
        )
    except Exception as exc:  # tracking must never cost the user a trained model
        log.debug("tracking failed", exc_info=True)
        outcome = _tracking_failure(exc, out, name, tracking_uri)
    (out / TRACKING_FILE).write_text(json.dumps(outcome.to_dict(), indent=2, default=str))
    return outcome


def _tracking_failure(
    exc: Exception, out: Path, name: str | None, tracking_uri: str | None
) -> TrackingFailure:
    """The failure record, and a warning that says how to register the saved bundle later."""
    from propensity.tracking import TrackingFailure, display_uri, resolve_tracking_uri

    try:
        uri = display_uri(resolve_tracking_uri(tracking_uri))
    except Exception:
        uri = "?"
    command = f"propensity models register {shlex.quote(str(out))} --name {shlex.quote(str(name))}"
    if tracking_uri:  # environment settings apply again by themselves; credentials are never echoed
        command += f" --tracking-uri {shlex.quote(display_uri(tracking_uri))}"
    reason = str(exc) if isinstance(exc, PropensityError) else f"{type(exc).__name__}: {exc}"
    warnings.warn(
        f"The model is saved in {out}, but it was not recorded in MLflow: {reason} "
        f"Register it later with: {command}",
        PropensityWarning,
        stacklevel=4,
    )
    return TrackingFailure(tracking_uri=uri, error=reason, bundle=str(out), register_command=command)


def write_training_outputs(result: TrainingResult, out: Path) -> dict[str, Path]:
    """Write ``metrics.json``, ``quarantine.csv``, ``evaluation.json`` and ``report.html`` beside a saved bundle.

    The report needs the ``explain`` extra (plotly, SHAP for forests); without it the
    evaluation is still written and the report is skipped with a warning.
    """
    run = result.run
    paths = {"bundle": out, "manifest": out / "manifest.json"}
    paths["quarantine"] = run.quarantine.write(out / "quarantine.csv")
    if run.test_quarantine is not None and run.test_quarantine.n_bad_rows:
        paths["test_quarantine"] = run.test_quarantine.write(out / "quarantine_test.csv")
    paths.update(_write_evaluation_and_report(result, out))
    paths["metrics"] = out / "metrics.json"
    write_json(out / "metrics.json", _metrics_summary(result, paths), default=_json_default)
    return paths


def _metrics_summary(result: TrainingResult, paths: Mapping[str, Path]) -> dict[str, Any]:
    m, run = result.model.manifest, result.run
    return {
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
        "timings_seconds": run.timings,
        "tuning": run.tuning,
        "paths": {k: str(v) for k, v in paths.items() if k != "metrics"},
    }


def _write_evaluation_and_report(result: TrainingResult, out: Path) -> dict[str, Path]:
    from propensity.evaluation import evaluate_training, write_evaluation

    evaluation = evaluate_training(result.model, result.run)
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
