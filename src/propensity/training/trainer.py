"""Honest training: validate, hold out a test set, compare candidates on the same folds, tune,
calibrate, choose a decision policy, refit the winner, and only then look at the test set.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from propensity.config import get_settings
from propensity.metrics import binary_metrics
from propensity.pipeline import LogOddsEnsemble, ScoringPipeline, TrainedModel
from propensity.schema import Quarantine, RoleTable, TargetSpec
from propensity.training.calibration import CalibrationChoice
from propensity.training.candidates import get_family
from propensity.training.config import REFIT_ALL_MAX_ROWS, TrainConfig
from propensity.training.cv import CVResult
from propensity.training.describe import build_manifest, candidate_reports
from propensity.training.holdout import hold_out
from propensity.training.progress import ProgressCallback, ProgressEvent, emit
from propensity.training.selection import Design, Selection, design, rounded, search, select

__all__ = ["FitResult", "ProgressEvent", "TrainConfig", "TrainingRun", "fit"]


@dataclass
class TrainingRun:
    """Everything a report needs from training, beyond the bundle itself."""

    roles: RoleTable
    target: TargetSpec
    quarantine: Quarantine
    test_quarantine: Quarantine | None
    y_train: np.ndarray
    oof_raw: np.ndarray
    oof: np.ndarray
    y_test: np.ndarray
    test_proba: np.ndarray
    test_raw: np.ndarray
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    ids_test: pd.Series | None
    candidates: list[CVResult]
    calibrations: dict[str, CalibrationChoice]
    tuning: dict[str, Any] | None
    timings: dict[str, float]
    validation_times: list[Any] = field(default_factory=list)


@dataclass
class FitResult:
    """What :func:`fit` returns: the calibrated model and the evidence behind it."""

    model: TrainedModel
    run: TrainingRun


def _refit(
    chosen: Selection, d: Design, X: np.ndarray | None = None, y: np.ndarray | None = None
) -> tuple[Any, dict[str, Any]]:
    """The shipped estimator refitted on every training row (or on ``X``, ``y``), and the
    parameters it was given.

    A single winner is refitted alone; an ensemble refits each member (with the rounds its
    folds found) and blends them with the weights fitted on out-of-fold predictions.
    """
    X = d.X_train if X is None else X
    y = d.y_train if y is None else y
    parts = chosen.members or [chosen.winner]
    fitted, params = [], {}
    for res in parts:
        family = get_family(res.family)
        final = family.final_params(res.params, res.best_iterations)
        estimator, _ = family.fit(family.build(final, d.ctx), X, y, d.ctx)
        fitted.append(estimator)
        params[res.name] = final
    if not chosen.members:
        return fitted[0], params[chosen.winner.name]
    ensemble = LogOddsEnsemble(fitted, chosen.weights, [m.name for m in parts], [m.family for m in parts])
    weights = dict(zip(ensemble.names, ensemble.weights, strict=True))
    return ensemble, {"weights": weights, "members": params}


def _refit_all(config: TrainConfig, d: Design, given_test: bool) -> bool:
    """Whether the shipped model is refitted on the training and test rows (see TrainConfig).

    By default only when the test rows were carved from the training data: a test table the
    user gave stays unseen, so that evaluating on it later remains honest.
    """
    if len(d.y_test) == 0:
        return False
    if config.refit_all is not None:
        return config.refit_all
    return not given_test and len(d.y_train) + len(d.y_test) <= REFIT_ALL_MAX_ROWS


def fit(
    frame: pd.DataFrame,
    config: TrainConfig,
    *,
    test_frame: pd.DataFrame | None = None,
    data_source: str = "DataFrame",
    data_hash: str = "",
    descriptions: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    label_definition: str | None = None,
    progress: ProgressCallback | None = None,
) -> FitResult:
    """Train on a labelled table: the trained model and the run that produced it.

    Steps, each in its own function: :func:`~propensity.training.holdout.hold_out` (validate,
    set the test rows aside), :func:`~propensity.training.selection.design` (encode, fix the
    folds), :func:`~propensity.training.selection.search` (every candidate on the same folds,
    tuning, screening), :func:`~propensity.training.selection.select` (calibration, winner,
    policy), then the refit on every training row and — only then — the test set.

    See :func:`propensity.train` for the user-facing entry point. ``descriptions`` and
    ``units`` (``{feature: text}``) are stored in the manifest's feature specs;
    ``label_definition`` in its task.
    """
    n_jobs = config.n_jobs or get_settings().n_jobs
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    emit(progress, "validate", 0, 1, "reading roles and validating rows")
    held = hold_out(frame, config, test_frame)
    timings["validate"] = time.perf_counter() - t0
    d = design(held, config, n_jobs)
    found = search(d, config, progress, timings)
    t3 = time.perf_counter()
    chosen = select(found, config)
    timings["calibrate_and_policy"] = time.perf_counter() - t3

    emit(progress, "refit", 0, 1, chosen.winner.name)
    t4 = time.perf_counter()
    winner, win_cal = chosen.winner, chosen.calibrations[chosen.winner.name]
    estimator, final_params = _refit(chosen, d)
    timings["refit"] = time.perf_counter() - t4
    pipeline = ScoringPipeline(d.encoder, estimator, win_cal.calibrator, family=winner.family, n_jobs=n_jobs)
    emit(progress, "refit", 1, 1)

    # now, and only now, the test set
    test_raw = pipeline.raw_proba_encoded(d.X_test)
    test_proba = win_cal.calibrator(test_raw)
    test_metrics = rounded(binary_metrics(held.y_test, test_proba, chosen.policy.threshold))
    refit_rows = 0
    if _refit_all(config, d, given_test=test_frame is not None):
        # the figures are recorded; the shipped model now learns from the test rows too
        emit(progress, "refit", 0, 1, f"{chosen.winner.name} on the training and test rows")
        t5 = time.perf_counter()
        X_all, y_all = np.concatenate([d.X_train, d.X_test]), np.concatenate([d.y_train, d.y_test])
        estimator, _ = _refit(chosen, d, X_all, y_all)
        pipeline = ScoringPipeline(
            d.encoder, estimator, win_cal.calibrator, family=winner.family, n_jobs=n_jobs
        )
        refit_rows = len(y_all)
        timings["refit_all"] = time.perf_counter() - t5
        emit(progress, "refit", 1, 1)
    reports = candidate_reports(found, chosen, config, test_metrics, final_params, timings["refit"])
    manifest = build_manifest(
        frame,
        held,
        d,
        chosen,
        reports,
        test_metrics,
        config,
        data_source=data_source,
        data_hash=data_hash,
        descriptions=descriptions or {},
        units=units or {},
        label_definition=label_definition,
        refit_rows=refit_rows,
    )
    timings["total"] = time.perf_counter() - t0
    run = TrainingRun(
        roles=held.roles,
        target=held.target,
        quarantine=held.quarantine,
        test_quarantine=held.test_quarantine,
        y_train=d.y_evaluated,
        oof_raw=found.oof(winner),
        oof=win_cal.oof,
        y_test=held.y_test,
        test_proba=test_proba,
        test_raw=test_raw,
        X_train=held.X_train if d.full else held.X_train.iloc[d.evaluated].reset_index(drop=True),
        X_test=held.X_test,
        ids_test=held.ids_test,
        candidates=found.results,
        calibrations=chosen.calibrations,
        tuning=found.tuning,
        timings={k: round(v, 3) for k, v in timings.items()},
        validation_times=held.validation_times,
    )
    return FitResult(TrainedModel(manifest, pipeline), run)
