"""Hyper-parameter tuning with Optuna, on the very folds used for selection, within a time budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from propensity.metrics import HIGHER_IS_BETTER, metric_value
from propensity.training.candidates import Family, FitContext
from propensity.training.cv import CVResult, Folds, cross_validate

__all__ = ["tune_family"]


def tune_family(
    family: Family,
    X: np.ndarray,
    y: np.ndarray,
    folds: Folds,
    ctx: FitContext,
    *,
    metric: str,
    seconds: float | None,
    trials: int | None = None,
    X_test: np.ndarray | None = None,
    resample: str = "none",
    on_trial: Callable[[int, float | None], None] | None = None,
) -> tuple[CVResult | None, dict[str, Any]]:
    """Search ``family``'s space for about ``seconds`` and/or ``trials`` trials (whichever ends
    first); every trial is a full cross-validation. A trial count alone is reproducible; a
    time budget depends on the machine's speed.

    A trial is pruned after a fold when its partial out-of-fold metric falls below the median
    of earlier trials at the same fold. Returns the best trial's :class:`CVResult` (named
    ``<family>_tuned``; it then competes with the untuned candidates) and a study summary.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if HIGHER_IS_BETTER[metric] else "minimize",
        sampler=optuna.samplers.TPESampler(seed=ctx.seed, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1),
    )
    study.enqueue_trial(family.default_params(ctx), skip_if_exists=True)
    results: dict[int, CVResult] = {}
    deadline = time.monotonic() + seconds if seconds else float("inf")

    def objective(trial: optuna.Trial) -> float:
        params = family.search_space(trial, ctx)

        def prune(i: int, done: np.ndarray, oof: np.ndarray) -> None:
            if i + 1 < len(folds):
                partial = metric_value(metric, y[done], oof[done])
                if partial is not None:
                    trial.report(partial, i)
                    if trial.should_prune():
                        raise optuna.TrialPruned()

        result = cross_validate(
            family, params, X, y, folds, ctx, X_test=X_test, resample=resample, on_fold=prune
        )
        scored = ~np.isnan(result.oof)  # time-ordered folds predict only the validation cutoffs
        value = metric_value(metric, y[scored], result.oof[scored])
        if on_trial is not None:
            on_trial(trial.number, value)
        if value is None:
            raise optuna.TrialPruned()
        results[trial.number] = result
        return value

    def stop_when_late(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if time.monotonic() >= deadline:
            study.stop()

    study.optimize(objective, n_trials=trials, timeout=seconds or None, callbacks=[stop_when_late])
    states = [t.state for t in study.trials]
    summary: dict[str, Any] = {
        "family": family.name,
        "seconds": seconds,
        "max_trials": trials,
        "trials": len(states),
        "completed": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
    }
    if not results:
        return None, summary
    best = study.best_trial
    result = results[best.number]
    result.name, result.tuned = f"{family.name}_tuned", True
    summary["best_value"] = best.value
    summary["best_params"] = best.params
    return result, summary
