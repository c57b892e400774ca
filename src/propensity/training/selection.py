"""Compare the candidates on the same folds, tune the leader, calibrate each, and choose the winner.

Everything here reads only the training rows: out-of-fold predictions decide the winner, its
calibration and the decision policy. Large tables (random folds only) are screened first: every
candidate is cross-validated on a stratified sample with the parameters it would get on every
row, and only the leader(s) are then cross-validated on every training row (successive halving).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from propensity.errors import PropensityError
from propensity.manifest import DecisionPolicy
from propensity.metrics import HIGHER_IS_BETTER, binary_metrics, logit, metric_value, sigmoid
from propensity.pipeline import FOREST_CLIP, TabularEncoder
from propensity.training.calibration import CalibrationChoice, choose_calibration
from propensity.training.candidates import FitContext, available_families, get_family
from propensity.training.config import TrainConfig
from propensity.training.cv import CVResult, cross_validate
from propensity.training.ensemble import greedy_ensemble
from propensity.training.holdout import HeldOut
from propensity.training.policy import choose_policy
from propensity.training.progress import ProgressCallback, emit, fold_progress
from propensity.training.tuning import tune_family

__all__ = ["ENSEMBLE", "Design", "Search", "Selection", "design", "member_log_odds", "search", "select"]

log = logging.getLogger(__name__)

Folds = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class Design:
    """The encoded training and test rows and the folds every candidate shares."""

    encoder: TabularEncoder
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    ctx: FitContext
    folds: Folds
    validation: str
    #: Rows with an out-of-fold prediction: every training row for k-fold CV; the validation
    #: cutoffs' rows for time-ordered folds. Calibration, the policy and OOF metrics use only these.
    evaluated: np.ndarray
    calibration_folds: Folds
    #: Folds follow time (stacked snapshots): no screening sample, which would mix cutoffs.
    time_ordered: bool = False

    @property
    def full(self) -> bool:
        return len(self.evaluated) == len(self.y_train)

    @property
    def y_evaluated(self) -> np.ndarray:
        return self.y_train if self.full else self.y_train[self.evaluated]


def design(held: HeldOut, config: TrainConfig, n_jobs: int) -> Design:
    """Fit the encoder on the training rows, encode both parts, and fix the folds."""
    encoder = TabularEncoder(held.feature_roles).fit(held.X_train)
    X_tr, X_te, y_tr = encoder.transform(held.X_train), encoder.transform(held.X_test), held.y_train
    ctx = FitContext(
        n_rows=len(y_tr),
        n_features=encoder.n_outputs,
        categorical=encoder.categorical_outputs_,
        n_jobs=n_jobs,
        seed=config.seed,
        class_weight=config.class_weight,
        positive_rate=float(y_tr.mean()),
    )
    if held.time_folds is not None:
        folds, validation = held.time_folds, held.validation
    else:
        splitter = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
        folds = list(splitter.split(X_tr, y_tr))
        validation = f"stratified {config.folds}-fold cross-validation"
    evaluated = np.sort(np.concatenate([va for _, va in folds]))
    full = len(evaluated) == len(y_tr)
    cal_folds = folds if full else calibration_folds(y_tr[evaluated], config.seed)
    return Design(
        encoder,
        X_tr,
        y_tr,
        X_te,
        held.y_test,
        ctx,
        folds,
        validation,
        evaluated,
        cal_folds,
        held.time_folds is not None,
    )


@dataclass
class Search:
    """Every candidate's out-of-fold predictions (and failures), and the tuning trace."""

    results: list[CVResult]
    errors: dict[str, str]
    tuning: dict[str, Any] | None
    #: The screening sample (sorted training-row indices), or ``None`` when every row was used.
    sample: np.ndarray | None
    sample_labels: np.ndarray
    sample_folds: Folds
    design: Design

    def oof(self, res: CVResult) -> np.ndarray:
        """A candidate's out-of-fold predictions, on the rows that have one."""
        if res.rows is not None:  # screened on the sample: every sample row has one
            return res.oof
        return res.oof if self.design.full else res.oof[self.design.evaluated]

    def labels(self, res: CVResult) -> np.ndarray:
        return self.sample_labels if res.rows is not None else self.design.y_evaluated

    def calibration_folds(self, res: CVResult) -> Folds:
        return self.sample_folds if res.rows is not None else self.design.calibration_folds


def search(
    d: Design, config: TrainConfig, progress: ProgressCallback | None, timings: dict[str, float]
) -> Search:
    """Cross-validate every candidate, tune the leader when asked, and re-run finalists on every row."""
    sample = None if d.time_ordered else screening_sample(d.y_train, config)
    if sample is None:
        X_sel, y_sel, sel_folds = d.X_train, d.y_train, d.folds
    else:
        # The sample stands in for the whole table: candidates get (and tuning starts from)
        # the parameters they would get on every row, so the leader is screened as it will run.
        X_sel, y_sel = d.X_train[sample], d.y_train[sample]
        splitter = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
        sel_folds = list(splitter.split(X_sel, y_sel))
    t1 = time.perf_counter()
    # Screened candidates are not tested: the test set is for the finalists (and saves ~5 s on 500k rows).
    X_te_sel = d.X_test if sample is None else None
    names = list(config.candidates or available_families())
    results, errors = _cross_validate_all(names, X_sel, y_sel, sel_folds, d.ctx, X_te_sel, config, progress)
    for res in results:
        res.rows = sample
    timings["cross_validate"] = time.perf_counter() - t1
    found = Search(results, errors, None, sample, y_sel, sel_folds, d)
    if config.time_budget > 0 or config.trials > 0:
        t2 = time.perf_counter()
        _tune_leader(found, X_sel, X_te_sel, config, progress)
        timings["tune"] = time.perf_counter() - t2
    if sample is not None:
        t3 = time.perf_counter()
        _finalists_on_every_row(found, config, progress)
        timings["full_data_cv"] = time.perf_counter() - t3
    return found


def _tune_leader(
    found: Search,
    X_sel: np.ndarray,
    X_te_sel: np.ndarray | None,
    config: TrainConfig,
    progress: ProgressCallback | None,
) -> None:
    leader = max(found.results, key=lambda r: rank_score(config.metric, found.labels(r), found.oof(r)))
    family = get_family(leader.family)
    emit(progress, "tune", 0, config.trials, family.name)
    tuned, found.tuning = tune_family(
        family,
        X_sel,
        found.sample_labels,
        found.sample_folds,
        found.design.ctx,
        metric=config.metric,
        seconds=config.time_budget or None,
        trials=config.trials or None,
        X_test=X_te_sel,
        resample=config.resample,
        on_trial=lambda n, v: emit(progress, "trial", n + 1, config.trials, f"{family.name}: {v}"),
    )
    if tuned is not None:
        tuned.rows = found.sample
        found.results.append(tuned)
    emit(progress, "tune", 1, 1)


def _finalists_on_every_row(found: Search, config: TrainConfig, progress: ProgressCallback | None) -> None:
    """After screening, only the leader(s) are cross-validated on every training row."""
    d = found.design
    ranked = sorted(found.results, key=lambda r: -rank_score(config.metric, found.sample_labels, r.oof))
    finalists = ranked[: config.finalists]
    full_runs: list[CVResult] = []
    for k, res in enumerate(finalists):
        family = get_family(res.family)
        params = res.params if res.tuned else family.default_params(d.ctx)
        emit(progress, "full-data CV", k, len(finalists), res.name)
        again = cross_validate(
            family,
            params,
            d.X_train,
            d.y_train,
            d.folds,
            d.ctx,
            name=res.name,
            # a lone finalist is the winner, tested after its refit: its fold models need not be
            X_test=d.X_test if len(finalists) > 1 else None,
            resample=config.resample,
            on_fold=fold_progress(progress, len(d.folds), res.name),
        )
        again.tuned = res.tuned
        full_runs.append(again)
    found.results = full_runs + [r for r in found.results if r not in finalists]


@dataclass
class Selection:
    """Each candidate's calibration and out-of-fold metrics, the winner and its decision policy.

    ``winner`` is the model that ships: the ensemble (a :class:`CVResult` of family
    ``"ensemble"`` whose out-of-fold predictions are the blend's) when it was built, else the
    single best candidate; ``single`` is always the best single candidate by ``config.metric``.
    """

    calibrations: dict[str, CalibrationChoice]
    oof_metrics: dict[str, dict[str, Any]]
    winner: CVResult
    policy: DecisionPolicy
    single: CVResult | None = None
    #: The ensemble's members (candidates), in the order of ``weights``; empty for a single model.
    members: list[CVResult] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    #: The greedy selection's score (out-of-fold log loss after a sigmoid fit): ensemble and best member.
    ensemble_score: dict[str, float] = field(default_factory=dict)

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)


#: The name (and family) of the ensemble in the manifest's candidates.
ENSEMBLE = "ensemble"


def select(found: Search, config: TrainConfig) -> Selection:
    """Calibrate every candidate on its out-of-fold predictions, choose the single winner by
    ``config.metric`` and, with ``config.ensemble`` and two or more candidates cross-validated on
    every row, blend them by greedy ensemble selection (kept only when it has two or more members)."""
    calibrations: dict[str, CalibrationChoice] = {}
    oof_metrics: dict[str, dict[str, Any]] = {}

    def assess(res: CVResult) -> None:
        oof, labels = found.oof(res), found.labels(res)
        choice = choose_calibration(oof, labels, found.calibration_folds(res))
        calibrations[res.name] = choice
        pol = choose_policy(config.policy, labels, choice.oof)
        # Ranking metrics (ROC-AUC, PR-AUC, lift) come from the raw scores: the bundle applies one
        # increasing calibrator, which keeps the model's order; the cross-fitted ones differ by fold
        # and reorder rows across folds (isotonic steps most: up to ~0.009 PR-AUC on online
        # shoppers, enough to pick the wrong winner). Probability metrics use the cross-fitted ones.
        oof_metrics[res.name] = rounded(binary_metrics(labels, choice.oof, pol.threshold, ranking=oof))

    for res in found.results:
        assess(res)
    # Candidates screened out on the sample are not comparable with full-data figures:
    # the winner comes from the candidates cross-validated on every training row.
    eligible = [r for r in found.results if r.rows is None]
    single = eligible[0]
    for res in eligible[1:]:
        if _better(
            config.metric, oof_metrics[res.name][config.metric], oof_metrics[single.name][config.metric]
        ):
            single = res
    winner = single
    members: list[CVResult] = []
    weights: list[float] = []
    score: dict[str, float] = {}
    # One family (``candidates=["lightgbm"]``, tuned or not) ships one model.
    if config.ensemble and len({r.family for r in eligible}) >= 2:
        built = _ensemble(found, eligible)
        if built is not None:
            winner, members, weights, score = built
            found.results.append(winner)
            assess(winner)
    policy = choose_policy(config.policy, found.design.y_evaluated, calibrations[winner.name].oof)
    return Selection(calibrations, oof_metrics, winner, policy, single, members, weights, score)


def member_log_odds(res: CVResult, p: np.ndarray) -> np.ndarray:
    """A candidate's log-odds from its probabilities, as :func:`propensity.pipeline.log_odds` gives them."""
    if res.family == "random_forest":
        p = np.clip(p, FOREST_CLIP, 1 - FOREST_CLIP)
    return logit(p)


def _ensemble(
    found: Search, eligible: list[CVResult]
) -> tuple[CVResult, list[CVResult], list[float], dict[str, float]] | None:
    """Greedy ensemble selection over the eligible candidates' out-of-fold log-odds, or ``None``
    when the best blend is a single candidate."""
    y = found.design.y_evaluated
    fit = greedy_ensemble([member_log_odds(r, found.oof(r)) for r in eligible], y, seed=found.design.ctx.seed)
    if len(fit.members) < 2:
        return None
    members = [eligible[i] for i in fit.members]
    weights = [round(float(fit.weights[i]), 6) for i in fit.members]

    def blend(arrays: list[np.ndarray]) -> np.ndarray:
        z = sum(w * member_log_odds(m, a) for m, w, a in zip(members, weights, arrays, strict=True))
        return sigmoid(np.asarray(z, dtype="float64"))

    test = [m.test_raw for m in members]
    result = CVResult(
        name=ENSEMBLE,
        family=ENSEMBLE,
        params={"weights": {m.name: w for m, w in zip(members, weights, strict=True)}},
        oof=blend([m.oof for m in members]),
        fit_seconds=round(sum(m.fit_seconds for m in members), 3),
        test_raw=blend([t for t in test if t is not None]) if all(t is not None for t in test) else None,
    )
    log.info("ensemble: %s", result.params["weights"])
    return (
        result,
        members,
        weights,
        {"ensemble": round(fit.score, 6), "best_member": round(fit.best_single, 6)},
    )


# ------------------------------------------------------------------------------ helpers


def rounded(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}


def rank_score(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    """``metric`` oriented so that higher is better (``-inf`` when undefined)."""
    value = metric_value(metric, y, p)
    if value is None:
        return -np.inf
    return value if HIGHER_IS_BETTER[metric] else -value


def _better(metric: str, a: float | None, b: float | None) -> bool:
    if a is None:
        return False
    if b is None:
        return True
    return a > b if HIGHER_IS_BETTER[metric] else a < b


def screening_sample(y: np.ndarray, config: TrainConfig) -> np.ndarray | None:
    """Sorted indices of a stratified screening sample, or ``None`` when the table is small enough."""
    if not config.screen_above or len(y) <= config.screen_above:
        return None
    idx, _ = train_test_split(
        np.arange(len(y)), train_size=config.screen_sample, stratify=y, random_state=config.seed
    )
    return np.sort(idx)


def calibration_folds(y: np.ndarray, seed: int, n: int = 5) -> Folds:
    """Stratified folds over the out-of-fold rows, for cross-fitting the calibrator."""
    k = max(2, min(n, int(np.bincount(y.astype(int), minlength=2).min())))
    return [
        (np.asarray(a), np.asarray(b))
        for a, b in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    ]


def _cross_validate_all(
    names: Sequence[str],
    X: np.ndarray,
    y: np.ndarray,
    folds: Folds,
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
        emit(progress, "cross-validate", k, len(names), name)
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
                    on_fold=fold_progress(progress, len(folds), name),
                )
            )
        except (ValueError, MemoryError, RuntimeError) as exc:  # one broken family must not sink the run
            log.warning("candidate %s failed: %s", name, exc)
            errors[name] = f"{type(exc).__name__}: {exc}"
    if not results:
        raise PropensityError(f"Every candidate failed to train: {errors}")
    emit(progress, "cross-validate", len(names), len(names))
    return results, errors
