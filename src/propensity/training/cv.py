"""Out-of-fold predictions for one candidate on fixed folds, with optional in-fold resampling."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from propensity.pipeline import positive_proba
from propensity.training.candidates import Family, FitContext

__all__ = ["CVResult", "Folds", "cross_validate", "resample_indices"]

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
