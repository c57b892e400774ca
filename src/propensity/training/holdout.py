"""Validate the training table and set the test rows aside, before anything is learned.

:func:`hold_out` turns a labelled table into typed training and test parts: roles are inferred
(or overridden), the target is parsed, bad rows are quarantined, and the test set is a given
table, the latest cutoff of stacked snapshots, or a stratified random share. Nothing after this
step reads the test labels until the winner has been refitted.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from propensity.errors import InsufficientDataError, PropensityWarning, SchemaError
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
from propensity.training.config import TrainConfig
from propensity.training.cv import fmt_time, time_ordered_split

__all__ = ["HeldOut", "hold_out"]

log = logging.getLogger(__name__)


@dataclass
class HeldOut:
    """The typed training rows, the test rows set aside, and how they were split."""

    roles: RoleTable
    target: TargetSpec
    quarantine: Quarantine
    test_quarantine: Quarantine | None
    rows_used: int
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    ids_test: pd.Series | None
    test_source: str
    #: Stacked snapshots: the time-ordered folds and how they validate (else ``None``/"").
    time_folds: list[tuple[np.ndarray, np.ndarray]] | None = None
    validation: str = ""
    validation_times: list[Any] = field(default_factory=list)
    #: Test rows equal to a training row in every feature (copies across a random split).
    repeated: int = 0

    @property
    def feature_roles(self) -> dict[str, Role]:
        return {name: self.roles[name].role for name in self.roles.features}


def hold_out(frame: pd.DataFrame, config: TrainConfig, test_frame: pd.DataFrame | None = None) -> HeldOut:
    """Validate ``frame`` and split it into training and test rows (see the module docstring).

    Raises
    ------
    SchemaError
        The target or time column is missing, no feature column remains, or the test table
        lacks columns of the training table.
    InsufficientDataError
        Too few usable rows, or too few of a class, after quarantine.
    """
    roles, target, y_all, typed, quarantine = _prepare(frame, config)
    good = ~quarantine.bad & (y_all >= 0)
    _enough(y_all, good, config, quarantine, "in the training data")
    common = {"roles": roles, "target": target, "quarantine": quarantine, "rows_used": int(good.sum())}
    if test_frame is not None:
        held = _given_test(frame, typed, y_all, good, test_frame, config, common)
    elif config.time_column is not None:
        held = _latest_cutoff(frame, typed, y_all, good, config, common)
    else:
        held = _random_share(frame, typed, y_all, good, config, common)
    if len(held.y_test) == 0 or held.y_test.min() == held.y_test.max():
        log.warning("the test set has a single class; test ROC-AUC and PR-AUC are undefined")
    return held


def _given_test(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    y_all: np.ndarray,
    good: np.ndarray,
    test_frame: pd.DataFrame,
    config: TrainConfig,
    common: dict[str, Any],
) -> HeldOut:
    roles: RoleTable = common["roles"]
    missing = [c for c in [config.target, *roles.features] if c not in test_frame.columns]
    if missing:
        raise SchemaError(
            f"The test table lacks column(s) {', '.join(map(repr, missing))} of the training table."
        )
    test_quarantine = Quarantine(len(test_frame))
    y_test_all, _ = parse_target(
        test_frame[config.target], positive=common["target"].positive, quarantine=test_quarantine
    )
    feature_roles = {name: roles[name].role for name in roles.features}
    typed_test = coerce_features(test_frame, feature_roles, test_quarantine)
    tgood = ~test_quarantine.bad & (y_test_all >= 0)
    ids = (
        test_frame[roles.id_column][tgood].reset_index(drop=True)
        if roles.id_column in test_frame.columns
        else None
    )
    return HeldOut(
        **common,
        test_quarantine=test_quarantine,
        X_train=typed[good].reset_index(drop=True),
        y_train=y_all[good],
        X_test=typed_test[tgood].reset_index(drop=True),
        y_test=y_test_all[tgood],
        ids_test=ids,
        test_source="given test table",
    )


def _latest_cutoff(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    y_all: np.ndarray,
    good: np.ndarray,
    config: TrainConfig,
    common: dict[str, Any],
) -> HeldOut:
    """Stacked snapshots: test on the latest cutoff, validate on the ones before it."""
    assert config.time_column is not None
    idx = np.flatnonzero(good)
    split = time_ordered_split(
        _time_values(frame[config.time_column]).iloc[idx],
        y_all[idx],
        gap=config.time_gap,
        validation_times=config.time_folds,
        folds=config.folds,
        seed=config.seed,
    )
    tr_idx, te_idx = idx[split.train], idx[split.test]
    purged = (
        f"; {split.purged} earlier row(s) dropped because their label window reaches past it"
        if split.purged
        else ""
    )
    return HeldOut(
        **common,
        test_quarantine=None,
        X_train=typed.iloc[tr_idx].reset_index(drop=True),
        y_train=y_all[tr_idx],
        X_test=typed.iloc[te_idx].reset_index(drop=True),
        y_test=y_all[te_idx],
        ids_test=_ids(frame, common["roles"], te_idx),
        test_source=f"latest {config.time_column} {fmt_time(split.test_time)}{purged}",
        time_folds=split.folds,
        validation=split.description,
        validation_times=list(split.validation_times),
    )


def _random_share(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    y_all: np.ndarray,
    good: np.ndarray,
    config: TrainConfig,
    common: dict[str, Any],
) -> HeldOut:
    """A stratified random share; copies of rows across the split are counted and announced."""
    idx = np.flatnonzero(good)
    tr_idx, te_idx = train_test_split(
        idx, test_size=config.test_size, stratify=y_all[idx], random_state=config.seed
    )
    tr_idx, te_idx = np.sort(tr_idx), np.sort(te_idx)
    X_train, X_test = typed.iloc[tr_idx].reset_index(drop=True), typed.iloc[te_idx].reset_index(drop=True)
    repeated = _test_rows_seen_in_training(X_train, X_test)
    if repeated and repeated >= 0.01 * len(X_test):
        warnings.warn(
            f"{repeated} of {len(X_test)} test rows ({repeated / len(X_test):.1%}) repeat a training row in every "
            "feature (ids aside): the table holds copies, so test figures may be optimistic. Deduplicate it, or "
            "pass a separate --test table.",
            PropensityWarning,
            stacklevel=4,
        )
    return HeldOut(
        **common,
        test_quarantine=None,
        X_train=X_train,
        y_train=y_all[tr_idx],
        X_test=X_test,
        y_test=y_all[te_idx],
        ids_test=_ids(frame, common["roles"], te_idx),
        test_source=f"stratified {config.test_size:.0%} hold-out",
        repeated=repeated,
    )


def _ids(frame: pd.DataFrame, roles: RoleTable, rows: np.ndarray) -> pd.Series | None:
    return frame[roles.id_column].iloc[rows].reset_index(drop=True) if roles.id_column else None


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
        frame, config.target, id_column=config.id_column, overrides=overrides, y=y, leak_auc=config.leak_auc
    )
    features = {name: roles[name].role for name in roles.features}
    if not features:
        excluded = "; ".join(f"{c.name}: {c.role} ({c.note})" for c in roles.excluded())
        raise SchemaError(f"No usable feature columns remain besides the target. Excluded: {excluded}.")
    typed = coerce_features(frame, features, quarantine)
    if roles.id_column:
        _quarantine_ids(frame, roles.id_column, config.time_column, quarantine)
    return roles, target, y, typed, quarantine


def _quarantine_ids(
    frame: pd.DataFrame, id_column: str, time_column: str | None, quarantine: Quarantine
) -> None:
    ids = frame[id_column]
    if time_column is not None:  # stacked snapshots: an id repeats once per cutoff
        dup = frame.duplicated([id_column, time_column], keep="first").to_numpy()
        why = f"duplicate id at the same {time_column} (the first row is kept)"
    else:
        dup = ids.duplicated(keep="first").to_numpy()
        why = "duplicate id (the first row with this id is kept)"
    dup &= ids.notna().to_numpy()
    quarantine.add(dup, id_column, ids[dup], why)
    quarantine.add(ids.isna().to_numpy(), id_column, "", "missing id")


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
