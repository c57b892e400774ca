"""Greedy ensemble selection with replacement over the candidates' out-of-fold log-odds.

Caruana et al. (2004), "Ensemble selection from libraries of models" — what AutoGluon's
``WeightedEnsemble`` does: start from the best single candidate, then repeatedly add (with
replacement) the candidate whose addition most improves the blend's out-of-fold score; the
weight of a candidate is the share of rounds it was picked in. The best blend seen along the
way is kept, so the ensemble never scores worse out of fold than its best member.

Blending happens in **log-odds** (each member's raw margin, see
:func:`propensity.pipeline.log_odds`), so the result is one model with one raw score: the
bundle calibrates it like any candidate, and its explanations are the weighted sum of its
members' (exact and additive).

The score is the out-of-fold **log loss after a sigmoid (Platt) fit** of the blend: a proper
scoring rule that uses every row, so unlike PR-AUC it does not swing with a handful of
positives on rare targets, and the sigmoid fit makes it blind to each member's scale and
class weighting (a balanced-weight model is not punished for its shifted probabilities).
Only out-of-fold predictions are used, never the test rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["EnsembleFit", "greedy_ensemble", "platt_log_loss"]

#: Rounds of greedy selection (AutoGluon's default ensemble size is 25).
ROUNDS = 25
#: A blend replaces the best one so far only when it lowers the log loss by at least this much:
#: gains below it are noise that an in-sample sigmoid fit rewards (a pure-noise candidate gained
#: ~1e-5 on 4,000 rows), and a smaller ensemble explains and scores faster.
MIN_GAIN = 1e-4
#: Rows used to fit the weights on large tables (a stratified subsample; the weights settle long before).
MAX_ROWS = 100_000


@dataclass
class EnsembleFit:
    """The chosen weights (one per candidate, summing to 1) and the score trace."""

    weights: np.ndarray
    score: float
    #: The best single candidate's score (log loss after a sigmoid fit) and its index.
    best_single: float
    best_index: int
    trace: list[float]

    @property
    def members(self) -> list[int]:
        """Indices of the candidates with a non-zero weight."""
        return [int(i) for i in np.flatnonzero(self.weights > 0)]


def platt_log_loss(z: np.ndarray, y: np.ndarray, iterations: int = 25) -> float:
    """Log loss of ``sigmoid(a·z + b)`` with ``a, b`` fitted by Newton's method on ``(z, y)``.

    A two-parameter fit on every out-of-fold row: the in-sample optimism is negligible, and
    it makes the score depend on how well ``z`` ranks and separates, not on its scale.
    """
    z = np.asarray(z, dtype="float64")
    y = np.asarray(y, dtype="float64")
    scale = float(np.std(z)) or 1.0
    zs = (z - float(np.mean(z))) / scale
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    a, b = 0.0, float(np.log(rate / (1 - rate)))
    loss = _loss(a * zs + b, y)
    for _ in range(iterations):
        m = a * zs + b
        p = 1.0 / (1.0 + np.exp(-m))
        g = p - y
        w = p * (1 - p) + 1e-12
        ga, gb = float(g @ zs), float(g.sum())
        haa, hab, hbb = float(w @ (zs * zs)) + 1e-9, float(w @ zs), float(w.sum()) + 1e-9
        det = haa * hbb - hab * hab
        if det <= 0:
            break
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        step = 1.0
        while step > 1e-4:  # damped Newton: never accept a step that raises the loss
            new = _loss((a - step * da) * zs + (b - step * db), y)
            if new <= loss:
                break
            step /= 2
        else:
            break
        a, b = a - step * da, b - step * db
        if loss - new < 1e-10:
            loss = new
            break
        loss = new
    return loss


def _loss(m: np.ndarray, y: np.ndarray) -> float:
    # log(1 + e^m) - y·m, stable for large |m|
    return float(np.mean(np.logaddexp(0.0, m) - y * m))


def greedy_ensemble(
    log_odds: Sequence[np.ndarray],
    y: np.ndarray,
    *,
    rounds: int = ROUNDS,
    seed: int = 0,
) -> EnsembleFit:
    """Weights for the candidates whose out-of-fold log-odds are ``log_odds`` (same rows, labels ``y``).

    Parameters
    ----------
    log_odds
        One array per candidate: its out-of-fold log-odds for the rows of ``y``.
    y
        The 0/1 outcomes.
    rounds
        Greedy rounds; a weight is a multiple of ``1 / rounds`` of the best round's total.
    seed
        Seed of the subsample used on tables above :data:`MAX_ROWS` rows.

    Returns
    -------
    EnsembleFit
        Weights summing to 1; a single candidate with weight 1 when no blend beats it.

    Example
    -------
    >>> fit = greedy_ensemble([oof_lgbm, oof_logit], y)  # doctest: +SKIP
    >>> fit.weights                                      # doctest: +SKIP
    array([0.64, 0.36])
    """
    if not log_odds:
        raise ValueError("greedy_ensemble needs at least one candidate.")
    Z = np.column_stack([np.asarray(z, dtype="float64") for z in log_odds])
    y = np.asarray(y, dtype="float64")
    if len(y) > MAX_ROWS:
        rng = np.random.default_rng(seed)
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
        k = max(1, round(MAX_ROWS * len(pos) / len(y)))
        keep = np.sort(
            np.concatenate([rng.choice(pos, min(k, len(pos)), False), rng.choice(neg, MAX_ROWS - k, False)])
        )
        Z, y = Z[keep], y[keep]
    singles = [platt_log_loss(Z[:, j], y) for j in range(Z.shape[1])]
    best_index = int(np.argmin(singles))
    counts = np.zeros(Z.shape[1])
    counts[best_index] = 1
    blend_sum = Z[:, best_index].copy()
    best_counts, best_score = counts.copy(), singles[best_index]
    trace = [best_score]
    for r in range(1, rounds):
        scores = [platt_log_loss((blend_sum + Z[:, j]) / (r + 1), y) for j in range(Z.shape[1])]
        j = int(np.argmin(scores))  # ties: the earlier candidate (the default order)
        counts[j] += 1
        blend_sum += Z[:, j]
        trace.append(scores[j])
        if scores[j] < best_score - MIN_GAIN:  # a better blend; otherwise keep the smaller one
            best_counts, best_score = counts.copy(), scores[j]
    weights = best_counts / best_counts.sum()
    return EnsembleFit(weights, float(best_score), float(singles[best_index]), best_index, trace)
