"""Out-of-fold predictions for one candidate on fixed folds, with optional in-fold resampling."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from propensity.pipeline import positive_proba
from propensity.training.candidates import Family, FitContext

__all__ = ["CVResult", "Folds", "TimeSplit", "cross_validate", "resample_indices", "time_ordered_split"]

Folds = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass
class CVResult:
    """What cross-validation learned about one candidate."""

    name: str
    family: str
    params: dict[str, Any]
    oof: np.ndarray
    best_iterations: list[int | None] = field(default_factory=list)
    fit_seconds: float = 0.0
    test_raw: np.ndarray | None = None
    tuned: bool = False
    rows: np.ndarray | None = None  # training-row indices the OOF covers (None = all)


def resample_indices(y: np.ndarray, how: str, seed: int) -> np.ndarray:
    """Row indices after random under- or over-sampling to balance the classes.

    Applied only to a fold's training part, never to validation or test rows.
    """
    idx = np.arange(len(y))
    if how == "none":
        return idx
    rng = np.random.default_rng(seed)
    pos, neg = idx[y == 1], idx[y == 0]
    minority, majority = (pos, neg) if len(pos) < len(neg) else (neg, pos)
    if how == "under":
        majority = rng.choice(majority, size=len(minority), replace=False)
    elif how == "over":
        minority = np.concatenate(
            [minority, rng.choice(minority, size=len(majority) - len(minority), replace=True)]
        )
    else:
        raise ValueError(f"Unknown resampling '{how}'; choose none, under or over.")
    return np.sort(np.concatenate([minority, majority]))


def cross_validate(
    family: Family,
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    folds: Folds,
    ctx: FitContext,
    *,
    name: str | None = None,
    X_test: np.ndarray | None = None,
    resample: str = "none",
    on_fold: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> CVResult:
    """Fit ``family`` with ``params`` on every fold; predict the held-out part.

    Boosted families stop early on a stratified 10 % slice of each fold's *training* part,
    so the validation part never influences its own predictions. Test rows (when given) are
    only predicted — their labels are not seen here — and averaged over the fold models.

    ``on_fold(i, done, oof)`` is called after each fold with the mask of rows predicted so far
    and the partial out-of-fold array (used for progress and pruning).
    """
    oof = np.full(len(y), np.nan)
    test_sum = np.zeros(len(X_test)) if X_test is not None else None
    best: list[int | None] = []
    spent = 0.0
    done = np.zeros(len(y), dtype=bool)
    for i, (tr, va) in enumerate(folds):
        X_es = y_es = None
        fit_idx = tr
        if family.early_stopping:
            fit_idx, es_idx = train_test_split(tr, test_size=0.1, stratify=y[tr], random_state=ctx.seed + i)
            X_es, y_es = X[es_idx], y[es_idx]
        fit_idx = fit_idx[resample_indices(y[fit_idx], resample, ctx.seed + i)]
        fold_ctx = FitContext(**{**ctx.__dict__, "n_rows": len(fit_idx)})
        model = family.build(params, fold_ctx)
        start = time.perf_counter()
        model, best_it = family.fit(model, X[fit_idx], y[fit_idx], fold_ctx, X_es, y_es)
        spent += time.perf_counter() - start
        best.append(best_it)
        oof[va] = positive_proba(model, X[va], ctx.n_jobs)
        if test_sum is not None and X_test is not None and len(X_test):
            test_sum += positive_proba(model, X_test, ctx.n_jobs)
        done[va] = True
        if on_fold is not None:
            on_fold(i, done, oof)
    return CVResult(
        name=name or family.name,
        family=family.name,
        params=dict(params),
        oof=oof,
        best_iterations=best,
        fit_seconds=round(spent, 3),
        test_raw=test_sum / len(folds) if test_sum is not None else None,
    )


@dataclass
class TimeSplit:
    """A time-ordered split of stacked snapshots (see :func:`time_ordered_split`)."""

    train: np.ndarray
    test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    test_time: Any
    validation_times: list[Any]
    purged: int
    description: str


def time_ordered_split(
    times: Any,
    y: np.ndarray,
    *,
    gap: Any = None,
    validation_times: int = 1,
    folds: int = 5,
    seed: int = 0,
) -> TimeSplit:
    """Split rows stamped with a time (e.g. the cutoff of a snapshot) so nothing is learnt from the future.

    - **test**: the rows of the latest time;
    - **training pool**: rows whose time plus ``gap`` (the label horizon) is at or before the test
      time, so no training label looks past the test cutoff ("purged"); later rows are dropped;
    - **validation folds**: each of the latest ``validation_times`` times of the pool is one fold,
      trained on the pool rows whose time plus ``gap`` is at or before it (an expanding window).
      With a single time in the pool, stratified ``folds``-fold CV within it instead (each row is
      then a different customer at the same cutoff).

    Fold indices are positions in the training pool (``train``).

    Raises
    ------
    InsufficientDataError
        Fewer than two distinct times, or nothing left to train on after purging.
    """
    from sklearn.model_selection import StratifiedKFold

    from propensity.errors import InsufficientDataError

    t = pd.Series(times).reset_index(drop=True)
    distinct = sorted(t.dropna().unique())
    if len(distinct) < 2:
        raise InsufficientDataError(
            f"A time-ordered split needs rows at two or more times; got {len(distinct)}. Use more cutoffs."
        )
    step = gap if gap is not None else pd.Timedelta(0) if isinstance(distinct[0], pd.Timestamp) else 0
    test_time = distinct[-1]
    test = np.flatnonzero((t == test_time).to_numpy())
    pool_mask = ((t + step) <= test_time).to_numpy() & (t != test_time).to_numpy()
    train = np.flatnonzero(pool_mask)
    purged = int(((t != test_time) & ~pool_mask).sum())
    if len(train) == 0:
        raise InsufficientDataError(
            f"No training rows remain: every earlier snapshot's label window reaches past the test cutoff {test_time} "
            f"(gap {gap}). Space the cutoffs at least the horizon apart, or add cutoffs."
        )
    pool_t = t.iloc[train].reset_index(drop=True)
    pool_y = y[train]
    pool_times = sorted(pool_t.unique())
    out_folds: list[tuple[np.ndarray, np.ndarray]] = []
    val_times: list[Any] = []
    for v in pool_times[::-1]:
        if len(out_folds) >= max(1, validation_times):
            break
        fit_rows = np.flatnonzero(((pool_t + step) <= v).to_numpy())
        val_rows = np.flatnonzero((pool_t == v).to_numpy())
        if len(fit_rows) == 0 or len(np.unique(pool_y[fit_rows])) < 2 or len(np.unique(pool_y[val_rows])) < 2:
            continue
        out_folds.append((fit_rows, val_rows))
        val_times.append(v)
    out_folds.reverse()
    val_times.reverse()
    if out_folds:
        first = val_times[0]
        desc = (
            f"time-ordered: validated on cutoff{'s' if len(val_times) > 1 else ''} "
            + ", ".join(fmt_time(v) for v in val_times)
            + f", each trained on earlier cutoffs whose label windows end by then (from {fmt_time(pool_times[0])})"
            + (f"; first validation cutoff {fmt_time(first)}" if len(val_times) > 1 else "")
        )
    elif len(pool_times) > 1:
        spaced = any(((pool_t + step) <= v).any() for v in pool_times)
        if not spaced:  # every training cutoff is closer than one horizon to the others
            apart = f"{step.days} days" if isinstance(step, pd.Timedelta) else str(step)
            raise InsufficientDataError(
                f"No training cutoff can be validated on: each label window ({apart}) reaches past the next "
                f"cutoff, so no earlier cutoff is entirely in its past. Space the cutoffs at least {apart} apart "
                f"(--step-days {apart.split()[0]}), or use fewer cutoffs."
            )
        raise InsufficientDataError(
            "No validation cutoff has both outcomes (buyers and non-buyers) and an earlier cutoff to train on; "
            "use more cutoffs, a longer horizon, or wider eligibility."
        )
    else:
        n = max(2, min(folds, int(min(np.bincount(pool_y.astype(int), minlength=2)))))
        splitter = StratifiedKFold(n, shuffle=True, random_state=seed)
        out_folds = [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(np.zeros(len(pool_y)), pool_y)]
        desc = (
            f"stratified {n}-fold within the training cutoff{'s' if len(pool_times) > 1 else ''} "
            + ", ".join(fmt_time(v) for v in pool_times)
            + " (too few earlier cutoffs for time-ordered validation)"
        )
    return TimeSplit(train, test, out_folds, test_time, val_times, purged, desc)


def fmt_time(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return str(value.date()) if value == value.normalize() else str(value)
    return str(value)
