"""Honest training: validate, hold out a test set, compare candidates on the same folds, tune,
calibrate, choose a decision policy, refit the winner, and only then look at the test set.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from propensity.config import get_settings
from propensity.errors import (
    InsufficientDataError,
    ParameterError,
    PropensityError,
    PropensityWarning,
    SchemaError,
)
from propensity.manifest import (
    CalibrationReport,
    CandidateReport,
    ExcludedColumn,
    FeatureSpec,
    InputSchema,
    Manifest,
    Provenance,
    TaskSpec,
)
from propensity.metrics import HIGHER_IS_BETTER, METRICS, binary_metrics
from propensity.pipeline import ScoringPipeline, TabularEncoder, TrainedModel
from propensity.schema import (
    Quarantine,
    Role,
    RoleTable,
    TargetSpec,
    coerce_features,
    infer_roles,
    missing_column_error,
    parse_target,
)
from propensity.training.calibration import CalibrationChoice, choose_calibration
from propensity.training.candidates import FitContext, available_families, get_family
from propensity.training.cv import CVResult, _fmt_time, cross_validate, time_ordered_split
from propensity.training.policy import PolicySpec, choose_policy
from propensity.training.tuning import tune_family

__all__ = ["ProgressEvent", "TrainConfig", "TrainingRun", "fit"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """A step of training, for progress bars: ``done`` of ``total`` in ``stage``."""

    stage: str
    done: int
    total: int
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


def _check(name: str, ok: bool, expected: str, got: Any) -> None:
    if not ok:
        raise ParameterError(f"The '{name}' parameter of train must be {expected}. Got {got!r} instead.")


@dataclass
class TrainConfig:
    """Settings of one training run (validated on creation).

    Parameters
    ----------
    target
        Name of the 0/1 (or two-valued) outcome column.
    id_column
        Column kept as the output id (inferred when ``None``).
    roles
        ``{column: role}`` overrides of the inferred roles.
    positive
        The target value that counts as positive (default: the true/yes/1 value, else the rarer).
    test_size
        Share of rows held out for the final test when no test table is given.
    folds
        Cross-validation folds (stratified).
    metric
        Selection metric: ``pr_auc`` (default; positives are rare), ``roc_auc``, ``log_loss``, ``brier``, ``lift_top10``.
    policy
        Decision policy, see :class:`~propensity.training.policy.PolicySpec`.
    time_budget
        Seconds of Optuna tuning for the leading family (0 = no time limit when ``trials`` is set).
    trials
        Number of Optuna trials for the leading family (0 = no limit when ``time_budget`` is set).
        With neither, there is no tuning. A trial count is reproducible; a time budget is not.
    candidates
        Families to compare (default: every installed one).
    class_weight
        ``auto`` (default: balanced weights for the linear model and the forest, none for
        boosted trees), ``balanced`` (all) or ``none``.
    resample
        ``none`` (default), ``under`` or ``over``, applied inside training folds only.
    seed
        Random seed for splits, models and tuning.
    n_jobs
        Threads per model (default from settings).
    min_rows
        Fewest usable rows to train on.
    leak_auc
        Single-column ROC-AUC above which a column is a leak suspect and excluded.
    time_column
        For stacked snapshots (one row per customer and cutoff): the column with each row's
        cutoff. Validation and test then follow time instead of random folds — test on the
        latest cutoff, validate on the latest earlier one(s), and never train on a row whose
        label window (``time + time_gap``) reaches past the cutoff it is evaluated on. The
        column is not a feature, and the id only has to be unique per cutoff.
    time_gap
        How far each row's label looks ahead of its time (e.g. ``pd.Timedelta(days=30)``).
    time_folds
        How many of the latest training cutoffs serve as validation folds (each trained on the
        cutoffs before it); 1 = validate on the latest.
    screen_above, screen_sample, finalists
        Successive halving for large tables: with more than ``screen_above`` training rows
        (0 = never), every candidate is first cross-validated on a stratified sample of
        ``screen_sample`` rows, with the parameters it would get on the whole table, and
        only the best ``finalists`` are then cross-validated on every training row; the
        winner is chosen among those. Random folds only: with a ``time_column`` every
        candidate runs on the time-ordered folds.
    """

    target: str
    id_column: str | None = None
    roles: Mapping[str, str] = field(default_factory=dict)
    positive: str | None = None
    test_size: float = 0.2
    folds: int = 5
    metric: str = "pr_auc"
    policy: PolicySpec = field(default_factory=PolicySpec)
    time_budget: float = 0.0
    trials: int = 0
    candidates: Sequence[str] | None = None
    class_weight: str = "auto"
    resample: str = "none"
    seed: int = 42
    n_jobs: int | None = None
    min_rows: int = 50
    leak_auc: float = 0.99
    time_column: str | None = None
    time_gap: Any = None
    time_folds: int = 1
    screen_above: int = 100_000
    screen_sample: int = 30_000
    finalists: int = 1

    def __post_init__(self) -> None:
        _check(
            "folds", isinstance(self.folds, int) and 2 <= self.folds <= 20, "an int in [2, 20]", self.folds
        )
        _check("test_size", 0 < self.test_size < 0.9, "a float in (0, 0.9)", self.test_size)
        _check("metric", self.metric in METRICS, f"one of {', '.join(METRICS)}", self.metric)
        _check("time_budget", self.time_budget >= 0, "a number of seconds >= 0", self.time_budget)
        _check("trials", isinstance(self.trials, int) and self.trials >= 0, "an int >= 0", self.trials)
        _check(
            "class_weight",
            self.class_weight in ("auto", "balanced", "none"),
            "'auto', 'balanced' or 'none'",
            self.class_weight,
        )
        _check(
            "resample", self.resample in ("none", "under", "over"), "'none', 'under' or 'over'", self.resample
        )
        _check("leak_auc", 0.5 < self.leak_auc <= 1.0, "a float in (0.5, 1]", self.leak_auc)
        _check("min_rows", self.min_rows >= 10, "an int >= 10", self.min_rows)
        _check("screen_above", self.screen_above >= 0, "an int >= 0", self.screen_above)
        _check("screen_sample", self.screen_sample >= 500, "an int >= 500", self.screen_sample)
        _check("finalists", self.finalists >= 1, "an int >= 1", self.finalists)
        _check(
            "time_folds",
            isinstance(self.time_folds, int) and 1 <= self.time_folds <= 20,
            "an int in [1, 20]",
            self.time_folds,
        )
        if self.candidates is not None:
            for name in self.candidates:
                fam = get_family(name)
                if not fam.available():
                    raise ParameterError(
                        f"Candidate '{name}' needs an extra: pip install 'propensity[{name}]'."
                    )


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


def _emit(progress: ProgressCallback | None, stage: str, done: int, total: int, message: str = "") -> None:
    if progress is not None:
        progress(ProgressEvent(stage, done, total, message))


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("propensity", "numpy", "pandas", "scikit-learn", "lightgbm", "xgboost", "pyarrow", "optuna"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _prepare(
    frame: pd.DataFrame, config: TrainConfig
) -> tuple[RoleTable, TargetSpec, np.ndarray, pd.DataFrame, Quarantine]:
    if config.target not in frame.columns:
        raise missing_column_error("target", config.target, [str(c) for c in frame.columns], "--target")
    quarantine = Quarantine(len(frame))
    y, target = parse_target(frame[config.target], positive=config.positive, quarantine=quarantine)
    overrides = dict(config.roles)
    if config.time_column is not None:
        if config.time_column not in frame.columns:
            raise missing_column_error(
                "time", config.time_column, [str(c) for c in frame.columns], "time_column"
            )
        overrides.setdefault(config.time_column, "ignore")
    roles = infer_roles(
        frame,
        config.target,
        id_column=config.id_column,
        overrides=overrides,
        y=y,
        leak_auc=config.leak_auc,
    )
    features = {name: roles[name].role for name in roles.features}
    if not features:
        excluded = "; ".join(f"{c.name}: {c.role} ({c.note})" for c in roles.excluded())
        raise SchemaError(f"No usable feature columns remain besides the target. Excluded: {excluded}.")
    typed = coerce_features(frame, features, quarantine)
    if roles.id_column:
        ids = frame[roles.id_column]
        if config.time_column is not None:  # stacked snapshots: an id repeats once per cutoff
            dup = frame.duplicated([roles.id_column, config.time_column], keep="first").to_numpy()
            why = f"duplicate id at the same {config.time_column} (the first row is kept)"
        else:
            dup = ids.duplicated(keep="first").to_numpy()
            why = "duplicate id (the first row with this id is kept)"
        dup &= ids.notna().to_numpy()
        quarantine.add(dup, roles.id_column, ids[dup], why)
        quarantine.add(ids.isna().to_numpy(), roles.id_column, "", "missing id")
    return roles, target, y, typed, quarantine


def _enough(y: np.ndarray, good: np.ndarray, config: TrainConfig, quarantine: Quarantine, where: str) -> None:
    n = int(good.sum())
    pos = int(y[good].sum())
    need_class = max(config.folds, 5)
    if n < config.min_rows or min(pos, n - pos) < need_class:
        reasons = ", ".join(f"{k}: {v}" for k, v in quarantine.counts_by_reason().items()) or "none"
        raise InsufficientDataError(
            f"Too few usable rows {where}: {n} rows ({pos} positive, {n - pos} negative) after quarantining "
            f"{quarantine.n_bad_rows} (reasons: {reasons}). Need at least {config.min_rows} rows and {need_class} of each class."
        )


def _profile(typed: pd.DataFrame, roles: Mapping[str, Role]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, role in roles.items():
        col = typed[name]
        entry: dict[str, Any] = {"role": str(role), "missing_share": float(col.isna().mean())}
        valid = col.dropna()
        if role in (Role.NUMERIC, Role.BOOLEAN) and len(valid):
            qs = [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1]
            entry["quantiles"] = {str(q): float(v) for q, v in zip(qs, np.quantile(valid, qs), strict=True)}
            entry["mean"], entry["std"] = float(valid.mean()), float(valid.std(ddof=0))
            edges = np.unique(np.quantile(valid, np.linspace(0, 1, 11)))
            if len(edges) > 1:
                counts, _ = np.histogram(valid, bins=edges)
                entry["histogram"] = {"edges": edges.tolist(), "shares": (counts / counts.sum()).tolist()}
        elif role is Role.CATEGORICAL and len(valid):
            shares = valid.value_counts(normalize=True)
            entry["top"] = {str(k): float(v) for k, v in shares.head(20).items()}
            entry["other_share"] = float(shares.iloc[20:].sum())
        elif role is Role.DATETIME and len(valid):
            entry["min"], entry["max"] = str(valid.min()), str(valid.max())
        out[name] = entry
    return out


def _feature_specs(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    roles: RoleTable,
    encoder: TabularEncoder,
    descriptions: Mapping[str, str],
    units: Mapping[str, str],
) -> list[FeatureSpec]:
    specs = []
    for name in roles.features:
        info = roles[name]
        col = typed[name]
        spec: dict[str, Any] = {
            "name": name,
            "role": str(info.role),
            "dtype": str(frame[name].dtype),
            "missing_share": float(col.isna().mean()),
            "required": bool(col.notna().all()),
            "description": descriptions.get(name, ""),
            "unit": units.get(name),
        }
        valid = col.dropna()
        if info.role in (Role.NUMERIC,) and len(valid):
            spec.update(
                min=float(valid.min()),
                max=float(valid.max()),
                integer=bool(np.all(np.mod(valid.to_numpy(), 1) == 0)),
            )
        elif info.role is Role.CATEGORICAL:
            spec["categories"] = encoder.levels_[name]
        elif info.role is Role.DATETIME:
            spec["datetime_parts"] = encoder.datetime_parts_[name]
        specs.append(FeatureSpec(**spec))
    return specs


def _round(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}


def _better(metric: str, a: float | None, b: float | None) -> bool:
    if a is None:
        return False
    if b is None:
        return True
    return a > b if HIGHER_IS_BETTER[metric] else a < b


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
) -> TrainedModel:
    """Train on a labelled table; return the trained model (its ``run`` holds the evidence).

    See :func:`propensity.train` for the user-facing entry point. ``descriptions`` and
    ``units`` (``{feature: text}``) are stored in the manifest's feature specs;
    ``label_definition`` in its task.
    """
    settings = get_settings()
    n_jobs = config.n_jobs or settings.n_jobs
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    time_folds: list[tuple[np.ndarray, np.ndarray]] | None = None
    validation_times: list[Any] = []
    _emit(progress, "validate", 0, 1, "reading roles and validating rows")
    roles, target, y_all, typed, quarantine = _prepare(frame, config)
    good = ~quarantine.bad & (y_all >= 0)
    _enough(y_all, good, config, quarantine, "in the training data")
    feature_roles = {name: roles[name].role for name in roles.features}
    ids_all = frame[roles.id_column] if roles.id_column else None
    test_quarantine: Quarantine | None = None
    if test_frame is not None:
        missing = [c for c in [config.target, *roles.features] if c not in test_frame.columns]
        if missing:
            raise SchemaError(
                f"The test table lacks column(s) {', '.join(map(repr, missing))} of the training table."
            )
        test_quarantine = Quarantine(len(test_frame))
        y_test_all, _ = parse_target(
            test_frame[config.target], positive=target.positive, quarantine=test_quarantine
        )
        typed_test_all = coerce_features(test_frame, feature_roles, test_quarantine)
        tgood = ~test_quarantine.bad & (y_test_all >= 0)
        X_tr_df, y_tr = typed[good].reset_index(drop=True), y_all[good]
        X_te_df, y_te = typed_test_all[tgood].reset_index(drop=True), y_test_all[tgood]
        ids_te = (
            test_frame[roles.id_column][tgood].reset_index(drop=True)
            if roles.id_column in test_frame.columns
            else None
        )
        test_source = "given test table"
    elif config.time_column is not None:
        idx = np.flatnonzero(good)
        times = _time_values(frame[config.time_column])
        split = time_ordered_split(
            times.iloc[idx],
            y_all[idx],
            gap=config.time_gap,
            validation_times=config.time_folds,
            folds=config.folds,
            seed=config.seed,
        )
        tr_idx, te_idx = idx[split.train], idx[split.test]
        X_tr_df, y_tr = typed.iloc[tr_idx].reset_index(drop=True), y_all[tr_idx]
        X_te_df, y_te = typed.iloc[te_idx].reset_index(drop=True), y_all[te_idx]
        ids_te = ids_all.iloc[te_idx].reset_index(drop=True) if ids_all is not None else None
        time_folds = split.folds
        test_source = f"latest {config.time_column} {_fmt_time(split.test_time)}" + (
            f"; {split.purged} earlier row(s) dropped because their label window reaches past it"
            if split.purged
            else ""
        )
        validation = split.description
        validation_times = list(split.validation_times)
    else:
        idx = np.flatnonzero(good)
        tr_idx, te_idx = train_test_split(
            idx, test_size=config.test_size, stratify=y_all[idx], random_state=config.seed
        )
        tr_idx, te_idx = np.sort(tr_idx), np.sort(te_idx)
        X_tr_df, y_tr = typed.iloc[tr_idx].reset_index(drop=True), y_all[tr_idx]
        X_te_df, y_te = typed.iloc[te_idx].reset_index(drop=True), y_all[te_idx]
        ids_te = ids_all.iloc[te_idx].reset_index(drop=True) if ids_all is not None else None
        test_source = f"stratified {config.test_size:.0%} hold-out"
    if len(y_te) == 0 or y_te.min() == y_te.max():
        log.warning("the test set has a single class; test ROC-AUC and PR-AUC are undefined")
    # A random split of a table with copies puts copies on both sides (time splits and given test tables are the user's).
    random_split = test_frame is None and config.time_column is None
    repeated = _test_rows_seen_in_training(X_tr_df, X_te_df) if random_split else 0
    if repeated and repeated >= 0.01 * len(X_te_df):
        warnings.warn(
            f"{repeated} of {len(X_te_df)} test rows ({repeated / len(X_te_df):.1%}) repeat a training row in every "
            "feature (ids aside): the table holds copies, so test figures may be optimistic. Deduplicate it, or "
            "pass a separate --test table.",
            PropensityWarning,
            stacklevel=2,
        )
    timings["validate"] = time.perf_counter() - t0

    encoder = TabularEncoder(feature_roles).fit(X_tr_df)
    X_tr, X_te = encoder.transform(X_tr_df), encoder.transform(X_te_df)
    ctx = FitContext(
        n_rows=len(y_tr),
        n_features=encoder.n_outputs,
        categorical=encoder.categorical_outputs_,
        n_jobs=n_jobs,
        seed=config.seed,
        class_weight=config.class_weight,
        positive_rate=float(y_tr.mean()),
    )
    if time_folds is not None:
        folds = time_folds
    else:
        splitter = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
        folds = list(splitter.split(X_tr, y_tr))
        validation = f"stratified {config.folds}-fold cross-validation"
    # Rows with an out-of-fold prediction: every training row for k-fold CV; the validation
    # cutoffs' rows for time-ordered folds. Calibration, the policy and OOF metrics use only these.
    ev = np.sort(np.concatenate([va for _, va in folds]))
    full = len(ev) == len(y_tr)
    y_ev = y_tr if full else y_tr[ev]
    cal_folds = folds if full else _calibration_folds(y_ev, config.seed)

    # Large tables (random folds only): screen every candidate on a stratified sample first.
    sample = _screening_sample(y_tr, config) if time_folds is None else None
    if sample is None:
        X_sel, y_sel, sel_folds, ctx_sel = X_tr, y_tr, folds, ctx
    else:
        # The sample stands in for the whole table: candidates get (and tuning starts from)
        # the parameters they would get on every row, so the leader is screened as it will run.
        X_sel, y_sel, ctx_sel = X_tr[sample], y_tr[sample], ctx
        splitter = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
        sel_folds = list(splitter.split(X_sel, y_sel))

    def oof_of(res: CVResult) -> np.ndarray:
        """A candidate's out-of-fold predictions, on the rows that have one."""
        if res.rows is not None:  # screened on the sample: every sample row has one
            return res.oof
        return res.oof if full else res.oof[ev]

    def labels_of(res: CVResult) -> np.ndarray:
        return y_sel if res.rows is not None else y_ev

    def cal_folds_of(res: CVResult) -> list[tuple[np.ndarray, np.ndarray]]:
        return sel_folds if res.rows is not None else cal_folds

    # 1. every candidate on the same folds
    names = list(config.candidates or available_families())
    t1 = time.perf_counter()
    # Screened candidates are not tested: the test set is for the finalists (and saves ~5 s on 500k rows).
    X_te_sel = X_te if sample is None else None
    results, errors = _cross_validate_all(names, X_sel, y_sel, sel_folds, ctx_sel, X_te_sel, config, progress)
    for res in results:
        res.rows = sample
    timings["cross_validate"] = time.perf_counter() - t1

    # 2. optional tuning of the leading family, on the same folds
    tuning = None
    if config.time_budget > 0 or config.trials > 0:
        t2 = time.perf_counter()
        leader = max(results, key=lambda r: _score_for_rank(config.metric, labels_of(r), oof_of(r)))
        family = get_family(leader.family)
        _emit(progress, "tune", 0, config.trials, family.name)
        tuned, tuning = tune_family(
            family,
            X_sel,
            y_sel,
            sel_folds,
            ctx_sel,
            metric=config.metric,
            seconds=config.time_budget or None,
            trials=config.trials or None,
            X_test=X_te_sel,
            resample=config.resample,
            on_trial=lambda n, v: _emit(progress, "trial", n + 1, config.trials, f"{family.name}: {v}"),
        )
        if tuned is not None:
            tuned.rows = sample
            results.append(tuned)
        timings["tune"] = time.perf_counter() - t2
        _emit(progress, "tune", 1, 1)

    # 2b. after screening, only the leader(s) are cross-validated on every training row
    if sample is not None:
        t2b = time.perf_counter()
        ranked = sorted(results, key=lambda r: -_score_for_rank(config.metric, y_sel, r.oof))
        finalists = ranked[: config.finalists]
        full_runs: list[CVResult] = []
        for k, res in enumerate(finalists):
            family = get_family(res.family)
            params = res.params if res.tuned else family.default_params(ctx)
            _emit(progress, "full-data CV", k, len(finalists), res.name)
            again = cross_validate(
                family,
                params,
                X_tr,
                y_tr,
                folds,
                ctx,
                name=res.name,
                # a lone finalist is the winner, tested after its refit: its fold models need not be
                X_test=X_te if len(finalists) > 1 else None,
                resample=config.resample,
                on_fold=_fold_progress(progress, len(folds), res.name),
            )
            again.tuned = res.tuned
            full_runs.append(again)
        results = full_runs + [r for r in results if r not in finalists]
        timings["full_data_cv"] = time.perf_counter() - t2b

    # 3. calibration and policy per candidate, on out-of-fold predictions only
    t3 = time.perf_counter()
    calibrations: dict[str, CalibrationChoice] = {}
    reports: list[CandidateReport] = []
    oof_metrics: dict[str, dict[str, Any]] = {}
    for res in results:
        choice = choose_calibration(oof_of(res), labels_of(res), cal_folds_of(res))
        calibrations[res.name] = choice
        pol = choose_policy(config.policy, labels_of(res), choice.oof)
        # Ranking metrics (ROC-AUC, PR-AUC, lift) come from the raw scores: the bundle applies one
        # increasing calibrator, which keeps the model's order; the cross-fitted ones differ by fold
        # and reorder rows across folds (isotonic steps most: up to ~0.009 PR-AUC on online
        # shoppers, enough to pick the wrong winner). Probability metrics use the cross-fitted ones.
        oof_metrics[res.name] = _round(
            binary_metrics(labels_of(res), choice.oof, pol.threshold, ranking=oof_of(res))
        )
    # Candidates screened out on the sample are not comparable with full-data figures:
    # the winner comes from the candidates cross-validated on every training row.
    eligible = [r for r in results if r.rows is None]
    winner = eligible[0]
    for res in eligible[1:]:
        if _better(
            config.metric, oof_metrics[res.name][config.metric], oof_metrics[winner.name][config.metric]
        ):
            winner = res
    win_cal = calibrations[winner.name]
    policy = choose_policy(config.policy, y_ev, win_cal.oof)
    timings["calibrate_and_policy"] = time.perf_counter() - t3

    # 4. refit the winner on every training row
    _emit(progress, "refit", 0, 1, winner.name)
    t4 = time.perf_counter()
    family = get_family(winner.family)
    final_params = family.final_params(winner.params, winner.best_iterations)
    estimator, _ = family.fit(family.build(final_params, ctx), X_tr, y_tr, ctx)
    refit_seconds = time.perf_counter() - t4
    timings["refit"] = refit_seconds
    pipeline = ScoringPipeline(encoder, estimator, win_cal.calibrator, family=family.name, n_jobs=n_jobs)
    _emit(progress, "refit", 1, 1)

    # 5. now, and only now, the test set
    test_raw = pipeline.raw_proba_encoded(X_te)
    test_proba = win_cal.calibrator(test_raw)
    test_metrics = _round(binary_metrics(y_te, test_proba, policy.threshold))
    for res in results:
        cal = calibrations[res.name]
        is_winner = res is winner
        if is_winner:
            test, source = test_metrics, "refit on all training rows"
        elif res.test_raw is not None:
            pol = choose_policy(config.policy, labels_of(res), cal.oof)
            test, source = (
                _round(binary_metrics(y_te, cal.calibrator(res.test_raw), pol.threshold)),
                "mean of the fold models",
            )
        else:
            test, source = None, None
        reports.append(
            CandidateReport(
                name=res.name,
                family=res.family,
                params=_jsonable(final_params if is_winner else res.params),
                oof=oof_metrics[res.name],
                test=test,
                test_source=source,
                fit_seconds=round(res.fit_seconds + (refit_seconds if is_winner else 0.0), 3),
                calibration=cal.method,
                tuned=res.tuned,
                rows=len(y_ev) if res.rows is None else len(res.rows),
            )
        )
    for name, err in errors.items():
        reports.append(CandidateReport(name=name, family=name, oof={}, fit_seconds=0.0, error=err))

    raw_scores = win_cal.scores["none"]
    manifest = Manifest(
        propensity_version=_versions().get("propensity", "0"),
        task=TaskSpec(
            target=config.target,
            positive=target.positive,
            negative=target.negative,
            positive_rate=float(y_tr.mean()),
            note=target.note,
            label_definition=label_definition,
        ),
        roles=roles.to_dict(),
        input_schema=InputSchema(
            id_column=roles.id_column,
            features=_feature_specs(frame, X_tr_df, roles, encoder, descriptions or {}, units or {}),
            excluded=[ExcludedColumn(name=c.name, role=str(c.role), note=c.note) for c in roles.excluded()],
        ),
        policy=policy,
        calibration=CalibrationReport(
            method=win_cal.method,
            scores=win_cal.scores,
            before=raw_scores,
            after=win_cal.scores[win_cal.method],
        ),
        winner=winner.name,
        metrics={"oof": oof_metrics[winner.name], "test": test_metrics},
        candidates=reports,
        profile=_profile(X_tr_df, feature_roles),
        provenance=Provenance(
            data_source=data_source,
            data_hash=data_hash,
            rows_in=len(frame),
            rows_quarantined=quarantine.n_bad_rows,
            rows_used=int(good.sum()),
            rows_train=len(y_tr),
            rows_test=len(y_te),
            test_source=test_source,
            folds=len(folds),
            validation=validation,
            seed=config.seed,
            metric=config.metric,
            time_budget=config.time_budget,
            trials=config.trials,
            versions=_versions(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            python=sys.version.split()[0],
            platform=platform.platform(),
            quarantine_reasons=quarantine.counts_by_reason(),
            test_rows_repeating_training=repeated,
        ),
    )
    model = TrainedModel(manifest, pipeline)
    timings["total"] = time.perf_counter() - t0
    model.run = TrainingRun(  # type: ignore[attr-defined]
        roles=roles,
        target=target,
        quarantine=quarantine,
        test_quarantine=test_quarantine,
        y_train=y_ev,
        oof_raw=oof_of(winner),
        oof=win_cal.oof,
        y_test=y_te,
        test_proba=test_proba,
        test_raw=test_raw,
        X_train=X_tr_df if full else X_tr_df.iloc[ev].reset_index(drop=True),
        X_test=X_te_df,
        ids_test=ids_te,
        candidates=results,
        calibrations=calibrations,
        tuning=tuning,
        timings={k: round(v, 3) for k, v in timings.items()},
        validation_times=validation_times,
    )
    return model


def _test_rows_seen_in_training(train: pd.DataFrame, test: pd.DataFrame) -> int:
    """How many test rows equal some training row in every feature (copies that leak across the split).

    Only counted when some feature is close to continuous (30 %+ distinct values): when every
    feature takes a few values, identical rows are expected and say nothing about copies.
    """
    if train.empty or test.empty:
        return 0
    if not any(train[c].nunique() >= 0.3 * max(1, int(train[c].notna().sum())) for c in train.columns):
        return 0
    seen = pd.util.hash_pandas_object(train, index=False)
    return int(pd.util.hash_pandas_object(test, index=False).isin(seen).sum())


def _screening_sample(y: np.ndarray, config: TrainConfig) -> np.ndarray | None:
    """Sorted indices of a stratified screening sample, or ``None`` when the table is small enough."""
    if not config.screen_above or len(y) <= config.screen_above:
        return None
    idx, _ = train_test_split(
        np.arange(len(y)), train_size=config.screen_sample, stratify=y, random_state=config.seed
    )
    return np.sort(idx)


def _cross_validate_all(
    names: Sequence[str],
    X: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    ctx: FitContext,
    X_test: np.ndarray | None,
    config: TrainConfig,
    progress: ProgressCallback | None,
) -> tuple[list[CVResult], dict[str, str]]:
    """Every named family with its default parameters on the same folds; failures are recorded, not raised."""
    results: list[CVResult] = []
    errors: dict[str, str] = {}
    for k, name in enumerate(names):
        family = get_family(name)
        _emit(progress, "cross-validate", k, len(names), name)
        try:
            results.append(
                cross_validate(
                    family,
                    family.default_params(ctx),
                    X,
                    y,
                    folds,
                    ctx,
                    X_test=X_test,
                    resample=config.resample,
                    on_fold=_fold_progress(progress, len(folds), name),
                )
            )
        except (ValueError, MemoryError, RuntimeError) as exc:  # one broken family must not sink the run
            log.warning("candidate %s failed: %s", name, exc)
            errors[name] = f"{type(exc).__name__}: {exc}"
    if not results:
        raise PropensityError(f"Every candidate failed to train: {errors}")
    _emit(progress, "cross-validate", len(names), len(names))
    return results, errors


def _time_values(col: pd.Series) -> pd.Series:
    """The time column as datetimes (or numbers), for ordering snapshots."""
    if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.reset_index(drop=True)
    parsed = pd.to_datetime(col, errors="coerce")
    if parsed.isna().any():
        raise SchemaError(
            f"The time column '{col.name}' must hold dates or numbers; {int(parsed.isna().sum())} value(s) could not be read."
        )
    return parsed.reset_index(drop=True)


def _calibration_folds(y: np.ndarray, seed: int, n: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds over the out-of-fold rows, for cross-fitting the calibrator."""
    k = max(2, min(n, int(np.bincount(y.astype(int), minlength=2).min())))
    return [
        (np.asarray(a), np.asarray(b))
        for a, b in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    ]


def _fold_progress(
    progress: ProgressCallback | None, folds: int, name: str
) -> Callable[[int, Any, Any], None]:
    def report(i: int, _done: Any, _oof: Any) -> None:
        _emit(progress, "fold", i + 1, folds, name)

    return report


def _score_for_rank(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    from propensity.metrics import metric_value

    value = metric_value(metric, y, p)
    if value is None:
        return -np.inf
    return value if HIGHER_IS_BETTER[metric] else -value


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.floating,)):
            v = float(v)
        out[k] = v
    return out
